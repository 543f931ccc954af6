// The pages' one DOM helper (not a page: the shell loads pages by name only).
//
// el makes an element: attrs set attributes (testid → data-testid, class,
// text → the text content, never HTML: data from the API is shown as text;
// on* → listeners; undefined, null and false are left out, true is a bare
// attribute), children are nodes, text or arrays of them.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'testid') e.dataset.testid = v;
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c != null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}
