// The list of saved conversations (gr.HTML #conversations): open one on click.
element.addEventListener('click', e => {
  const b = e.target.closest('button.conv-open');
  if (b && element.contains(b)) trigger('select', {id: b.dataset.id});
});
