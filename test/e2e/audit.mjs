// Checks of the rendered page, run inside it with page.evaluate (each function stands alone):
// the WCAG contrast of every visible text and the size of every control.

// WCAG contrast of every visible text (text nodes, form controls' own text, ::before/::after
// content) against the background it is painted on: the element's and its ancestors' background
// colours composited from the page down, each colour's alpha and every ancestor's opacity
// applied. Large text (24 px, or 18.66 px bold) needs 3:1, the rest 4.5:1. Returns the failures.
export function auditContrast() {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1,
  });
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  // the background under an element: the canvas, then every ancestor's background, outermost first
  const background = (elem) => {
    const chain = [];
    for (let n = elem; n && n.nodeType === 1; n = n.parentElement) chain.push(n);
    const root = getComputedStyle(document.documentElement).backgroundColor;
    const body = getComputedStyle(document.body).backgroundColor;
    let bg = parse(root) && parse(root).a > 0 ? parse(root) : parse(body) && parse(body).a > 0 ? parse(body) : { r: 255, g: 255, b: 255, a: 1 };
    let opacity = 1;
    for (const n of chain.reverse()) {
      const cs = getComputedStyle(n);
      const c = parse(cs.backgroundColor);
      if (c && c.a > 0) bg = over(c, bg);
      opacity *= Number(cs.opacity);
    }
    return { bg, opacity };
  };
  const visible = (elem) => {
    const r = elem.getBoundingClientRect();
    if (r.width <= 1 || r.height <= 1) return false;
    const cs = getComputedStyle(elem);
    return cs.visibility === 'visible' && elem.checkVisibility({ opacityProperty: true, visibilityProperty: true });
  };
  const failures = [];
  let checked = 0;
  const audit = (elem, cs, what, text) => {
    const { bg, opacity } = background(elem);
    const fg = parse(cs.color);
    fg.a *= opacity;
    const ink = over(fg, bg);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    const got = ratio(ink, bg);
    checked++;
    if (got < need) {
      failures.push(what + ' "' + text.trim().slice(0, 40) + '" ' + got.toFixed(2) + ':1 < ' + need + ':1 (' + cs.color + ' on rgb(' +
        [bg.r, bg.g, bg.b].map(Math.round).join(', ') + '))');
    }
  };
  for (const elem of document.body.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'OPTION'].includes(elem.tagName) || !visible(elem)) continue;
    const cs = getComputedStyle(elem);
    const own = Array.from(elem.childNodes).filter((n) => n.nodeType === 3 && n.textContent.trim()).map((n) => n.textContent).join('');
    const tag = elem.tagName.toLowerCase() + (elem.id ? '#' + elem.id : '') + (elem.className && typeof elem.className === 'string' ? '.' + elem.className.trim().split(/\s+/).join('.') : '');
    if (own) audit(elem, cs, tag, own);
    if ((elem.tagName === 'INPUT' || elem.tagName === 'SELECT') && elem.value) audit(elem, cs, tag + ' value', elem.value);
    if (elem.tagName === 'INPUT' && !elem.value && elem.placeholder) audit(elem, getComputedStyle(elem, '::placeholder'), tag + '::placeholder', elem.placeholder);
    for (const pseudo of ['::before', '::after']) {
      const ps = getComputedStyle(elem, pseudo);
      const m = /^"(.+)"$/.exec(ps.content);
      if (m && m[1].trim() && ps.display !== 'none') audit(elem, ps, tag + pseudo, m[1]);
    }
  }
  return { checked, failures };
}

// Every visible control (link, button, field, anything focusable) is at least 24 x 24 CSS px
// (WCAG 2.2, 2.5.8), but for links inside a sentence, which the rule exempts. Returns the
// failures.
export function auditTargets() {
  const failures = [];
  let checked = 0;
  const controls = document.body.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex="-1"])');
  for (const c of controls) {
    if (!c.checkVisibility({ visibilityProperty: true })) continue;
    const r = c.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const inSentence = c.tagName === 'A' && Array.from(c.parentElement.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (inSentence) continue;
    checked++;
    if (r.width < 24 || r.height < 24) {
      failures.push(c.tagName.toLowerCase() + (c.id ? '#' + c.id : '') + ' "' + (c.textContent || c.value || '').trim().slice(0, 30) +
        '" ' + Math.round(r.width) + 'x' + Math.round(r.height));
    }
  }
  return { checked, failures };
}
