// The article side panel (gr.HTML #article): scroll the cited span into view, inside the
// panel's own scroll box, whenever an article is opened.
const go = () => {
  const box = element.querySelector('.article-body');
  const mark = element.querySelector('mark.cited');
  if (!box) return;
  box.scrollTop = mark ? Math.max(0, mark.offsetTop - box.clientHeight / 3) : 0;
  const r = element.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) element.scrollIntoView({block: 'nearest'});
};
watch('value', () => requestAnimationFrame(go));
requestAnimationFrame(go);
