// The library table (gr.HTML #library): sort by a column header, select rows, preview an
// article, and ask to delete the selected ones (the server asks for confirmation).
const state = element.__sort || (element.__sort = {key: null, dir: 1});
const sort = () => {
  const body = element.querySelector('tbody');
  if (!body || !state.key) return;
  const btn = element.querySelector(`button.sort[data-key="${state.key}"]`);
  const numeric = btn && btn.dataset.type === 'number';
  const rows = [...body.rows];
  rows.sort((a, b) => {
    const x = a.dataset[state.key] || '', y = b.dataset[state.key] || '';
    const c = numeric ? Number(x) - Number(y) : x.localeCompare(y);
    return c * state.dir;
  });
  rows.forEach(r => body.appendChild(r));
  element.querySelectorAll('th[aria-sort]').forEach(th => {
    const b = th.querySelector('button.sort');
    th.setAttribute('aria-sort', b && b.dataset.key === state.key ? (state.dir > 0 ? 'ascending' : 'descending') : 'none');
  });
};
const picked = () => [...element.querySelectorAll('input.lib-pick:checked')].map(i => i.value);
const updateDelete = () => {
  const del = element.querySelector('button.lib-delete');
  if (!del) return;
  const n = picked().length;
  del.disabled = n === 0;
  del.textContent = n ? `Delete selected (${n})…` : 'Delete selected…';
};
element.addEventListener('click', e => {
  const s = e.target.closest('button.sort');
  if (s) {
    state.dir = state.key === s.dataset.key ? -state.dir : 1;
    state.key = s.dataset.key;
    sort();
    return;
  }
  const p = e.target.closest('button.lib-preview');
  if (p) { trigger('select', {id: p.dataset.id}); return; }
  const d = e.target.closest('button.lib-delete');
  if (d && !d.disabled) trigger('delete', {ids: picked()});
});
element.addEventListener('change', e => {
  if (e.target.matches('input.lib-all')) element.querySelectorAll('input.lib-pick').forEach(i => { i.checked = e.target.checked; });
  updateDelete();
});
watch('value', () => { sort(); updateDelete(); });
sort();
updateDelete();
