// The article side panel (gr.HTML #article): scroll the cited span into view, inside the
// panel's own scroll box, whenever an article is opened, and tell screen readers which
// article opened (a polite live region outside the panel: the panel's own text is long).
let announce = document.getElementById('rag-announce');
if (!announce) {
  announce = document.createElement('div');
  announce.id = 'rag-announce';
  announce.className = 'sr-only';
  announce.setAttribute('aria-live', 'polite');
  document.body.appendChild(announce);
}
const go = () => {
  const box = element.querySelector('.article-body');
  const mark = element.querySelector('mark.cited');
  if (!box) return;
  box.scrollTop = mark ? Math.max(0, mark.offsetTop - box.clientHeight / 3) : 0;
  const r = element.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) element.scrollIntoView({block: 'nearest'});
  const title = element.querySelector('.article-title');
  if (title) announce.textContent = `Opened in the article panel: ${title.textContent}` + (mark ? ', at the cited passage.' : '.');
};
watch('value', () => requestAnimationFrame(go));
requestAnimationFrame(go);
