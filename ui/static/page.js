() => {
  // Page-wide: the technical names of the plain-language settings, as tooltips on their choices.
  const tips = {
    bm25: 'Technical name: BM25 keyword ranking (mode "bm25")',
    hybrid: 'Technical name: hybrid search, BM25 and embeddings fused by reciprocal rank (mode "hybrid")',
    dense: 'Technical name: dense retrieval by embedding similarity (mode "dense")',
    extractive: 'Technical name: extractive answerer (answer mode "extractive")',
    llamacpp: 'Technical name: a GGUF model run by llama.cpp (answer mode "llamacpp")',
    openai: 'Technical name: an OpenAI-compatible server (answer mode "openai")',
  };
  const apply = () => document.querySelectorAll('#search-mode input[type=radio], #answer-mode input[type=radio]').forEach(input => {
    const label = input.closest('label');
    const tip = tips[input.value];
    if (label && tip && label.title !== tip) label.title = tip;
  });
  // Gradio's upload area is a button whose aria-label differs from its visible text
  // ("Drop File Here - or - Click to Upload"); without the label its name is that text.
  const fixUpload = () => document.querySelectorAll('#upload button.upload-container[aria-label]')
    .forEach(b => b.removeAttribute('aria-label'));
  new MutationObserver(() => { apply(); fixUpload(); }).observe(document.body, {childList: true, subtree: true});
  fixUpload();
  apply();
}
