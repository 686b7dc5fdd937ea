// The answer being written (gr.HTML #live): keep it in view while it grows, unless the
// reader has scrolled up to read something else.
const scroller = () => element.closest('#chat-scroll');
watch('value', () => {
  const s = scroller();
  if (s && s.scrollHeight - s.scrollTop - s.clientHeight < 160) requestAnimationFrame(() => { s.scrollTop = s.scrollHeight; });
});
