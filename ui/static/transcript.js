// The conversation (gr.HTML #chatbot): markers and source cards open the article in the
// side panel; hovering or focusing a marker highlights its source card (and back);
// Copy / Regenerate / Edit buttons. `element`, `trigger` and `watch` come from gr.HTML.
const scroller = () => element.closest('#chat-scroll');
const toBottom = () => { const s = scroller(); if (s) s.scrollTop = s.scrollHeight; };

const highlight = (el, on) => {
  const ex = el.closest('.exchange');
  if (!ex) return;
  if (el.matches('button.marker')) {
    const n = el.dataset.n;
    ex.querySelectorAll(`.src-card[data-ns~="${n}"]`).forEach(c => c.classList.toggle('hl', on));
    ex.querySelectorAll(`.src-quote[data-n="${n}"]`).forEach(q => q.classList.toggle('hl', on));
  } else if (el.matches('.src-card')) {
    (el.dataset.ns || '').trim().split(/\s+/).filter(Boolean).forEach(n =>
      ex.querySelectorAll(`button.marker[data-n="${n}"]`).forEach(m => m.classList.toggle('hl', on)));
  }
};
const hoverTarget = t => t && t.closest && t.closest('button.marker, .src-card');
element.addEventListener('mouseover', e => {
  const t = hoverTarget(e.target);
  if (t && !t.contains(e.relatedTarget)) highlight(t, true);
});
element.addEventListener('mouseout', e => {
  const t = hoverTarget(e.target);
  if (t && !t.contains(e.relatedTarget)) highlight(t, false);
});
element.addEventListener('focusin', e => { const t = hoverTarget(e.target); if (t) highlight(t, true); });
element.addEventListener('focusout', e => { const t = hoverTarget(e.target); if (t) highlight(t, false); });

const copy = async (text, btn) => {
  try {
    await navigator.clipboard.writeText(text);
  } catch (err) {  // not a secure context: the old way
    const area = document.createElement('textarea');
    area.value = text; area.setAttribute('readonly', ''); area.style.position = 'fixed'; area.style.opacity = '0';
    document.body.appendChild(area); area.select(); document.execCommand('copy'); area.remove();
  }
  const label = btn.textContent;
  btn.textContent = 'Copied'; btn.dataset.copied = '1';
  setTimeout(() => { btn.textContent = label; delete btn.dataset.copied; }, 2000);
};

element.addEventListener('click', e => {
  const act = e.target.closest('[data-act]');
  if (act && element.contains(act)) {
    const kind = act.dataset.act;
    if (kind === 'copy') copy(act.dataset.copy || '', act);
    else if (kind === 'regenerate') trigger('retry');
    else if (kind === 'edit') {
      trigger('edit');
      setTimeout(() => { const box = document.querySelector('#question textarea'); if (box) box.focus(); }, 400);
    }
    return;
  }
  if (e.target.closest('a')) return;  // a card's link to the original opens normally
  const src = e.target.closest('[data-a]');
  if (!src || !element.contains(src)) return;
  element.querySelectorAll('.src-card.open').forEach(c => c.classList.remove('open'));
  const card = src.closest('.src-card');
  if (card) card.classList.add('open');
  trigger('select', {article_id: src.dataset.a, start: Number(src.dataset.s), end: Number(src.dataset.e),
                     n: src.dataset.n || ''});
});

watch('value', () => requestAnimationFrame(toBottom));
requestAnimationFrame(toBottom);
