// How the page shows things: small DOM helpers, an answer (its words, its bars) and a photo's card.
// Everything goes in through textContent, so a file name is never parsed as HTML.

export const NOTHING = "nothing recognised";
const NOT_CONFIDENT = "nothing recognised with enough confidence";

export function $(id) { return document.getElementById(id); }

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;  // textContent only: file names are never parsed as HTML
  return node;
}

export function percent(score) { return (score * 100).toFixed(1) + "%"; }

export function status(text, isError = false) {
  const node = $("status");
  node.textContent = text;
  node.className = isError ? "error small" : "muted small";
}

// The words instead of a label when a model with a background class saw nothing of interest, as the runner says.
function nothingMessage(result, background) {
  if (background === null || result.detected) return null;
  return result.label === background ? NOTHING : NOT_CONFIDENT;
}

function bars(list, result) {
  list.replaceChildren();
  result.top_k.forEach((item, index) => {
    const row = el("li", index === 0 ? "bar top" : "bar");
    const fill = el("span", "bar-fill");
    fill.style.width = Math.max(0, Math.min(100, item.score * 100)).toFixed(1) + "%";
    const track = el("span", "bar-track");
    track.append(fill);
    row.append(el("span", "bar-label", item.label), el("span", "bar-value", percent(item.score)), track);
    list.append(row);
  });
}

// The answer line, the detail line ("other 98.1%" under "nothing recognised") and the bars.
export function render(result, background, answerNode, detailNode, barsNode) {
  const nothing = nothingMessage(result, background);
  answerNode.textContent = nothing === null ? result.label : nothing;
  answerNode.className = nothing === null ? "answer" : "answer nothing";
  answerNode.dataset.label = result.label;
  detailNode.textContent = nothing === null ? "" : `${result.top_k[0].label} ${percent(result.score)}`;
  if (nothing !== null && result.label === background) barsNode.replaceChildren();  // words, not bars
  else bars(barsNode, result);
}

export function addCard(file) {
  const card = el("article", "card");
  const thumb = el("img", "thumb");
  thumb.alt = file.name;
  const url = URL.createObjectURL(file);
  thumb.src = url;
  thumb.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
  thumb.addEventListener("error", () => { URL.revokeObjectURL(url); thumb.classList.add("broken"); }, { once: true });
  const body = el("div", "card-body");
  body.append(el("h3", "name", file.name || "photo"), el("p", "status muted", "classifying…"));
  card.append(thumb, body);
  $("results").prepend(card);
  return card;
}

