// The feed list (gr.HTML #feeds): "Refresh now" and "Remove…" per feed; the server does
// the work (and asks for confirmation before removing).
element.addEventListener('click', e => {
  const r = e.target.closest('button.feed-refresh');
  if (r) { r.disabled = true; r.textContent = 'Refreshing…'; trigger('select', {url: r.dataset.url}); return; }
  const d = e.target.closest('button.feed-remove');
  if (d) trigger('delete', {url: d.dataset.url});
});
