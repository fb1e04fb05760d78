// The pattern graph: reactions as nodes, top to bottom in the pattern's order, transitions as
// edges. A transition to the following reaction is a straight arrow down; every other one (back,
// forward by more than one, to itself) curves around the right-hand side in a lane of its own, so
// no two of them overlap. `and`/`or` conditions list their operands inside the node, and each
// operand's own transition is labelled with its place (`or 2`).

const SVG = "http://www.w3.org/2000/svg";
const END = "$end";
const NODE_WIDTH = 260;
const LINE = 16;
const GAP = 46;
const LANE = 22;
const LEFT = 16;
const TOP = 12;

/** The nodes and edges of `pattern` (a pattern's JSON). */
export function shapeOf(pattern) {
  const reactions = Array.isArray(pattern.reactions) ? pattern.reactions : [];
  const index = new Map(reactions.map((r, i) => [r.name, i]));
  const nodes = reactions.map((r, i) => nodeOf(r, i));
  const edges = [];
  const target = (name, from) => {
    if (name === "$next") return from + 1 < reactions.length ? from + 1 : END;
    if (name === "$terminate") return END;
    if (name === "$noTransition") return from;
    if (index.has(name)) return index.get(name);
    return null; // an expression: decided when it runs
  };
  reactions.forEach((reaction, i) => {
    const found = [];
    collect(reaction.condition || {}, "", found);
    if (found.length === 0) found.push({ name: "$next", label: "", implicit: true });
    for (const t of found) {
      const to = target(t.name, i);
      const label = to === null ? `${t.label} ${t.name}`.trim() : t.label;
      edges.push({ from: i, to: to === null ? i : to, label, dynamic: to === null, implicit: !!t.implicit });
    }
    const expiry = reaction.expiry && reaction.expiry.transition;
    if (expiry) {
      const to = target(expiry.name || "$next", i);
      edges.push({ from: i, to: to === null ? i : to, label: `expiry ${Math.round((reaction.expiry.interval || 0) / 1000)} s`, expiry: true });
    }
  });
  return { nodes, edges };
}

function nodeOf(reaction, i) {
  const condition = reaction.condition || {};
  const type = condition.type || "filter";
  const lines = [];
  if (type === "and" || type === "or") {
    (condition.operands || []).forEach((op, n) => {
      lines.push(`${type} ${n + 1}: ${op.type === "filter" || !op.type ? op.xpr || "" : `${op.type} (${(op.operands || []).length})`}`);
    });
  } else if (condition.xpr) {
    lines.push(condition.xpr);
  }
  const kind = type === "and" || type === "or" ? `${type} · ${(condition.operands || []).length} operands` : type;
  return { index: i, name: reaction.name || `#${i + 1}`, kind, lines };
}

function collect(condition, label, out) {
  if (condition.transition && condition.transition.name) {
    out.push({ name: condition.transition.name, label });
  }
  if (condition.type === "and" || condition.type === "or") {
    (condition.operands || []).forEach((op, n) => collect(op, `${condition.type} ${n + 1}`, out));
  }
}

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clip(text, max) {
  const flat = String(text).replace(/\s+/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** An `<svg>` of `pattern`; the reaction named `current` is highlighted. */
export function drawPattern(pattern, current) {
  const { nodes, edges } = shapeOf(pattern);
  const boxes = [];
  let y = TOP;
  for (const node of nodes) {
    const height = 40 + LINE * node.lines.length;
    boxes.push({ x: LEFT, y, w: NODE_WIDTH, h: height });
    y += height + GAP;
  }
  const endY = y;
  const end = { x: LEFT + NODE_WIDTH / 2, y: endY + 14 };
  const height = endY + 40;
  const lanes = edges.filter((e) => !(e.to === e.from + 1 || (e.to === END && e.from === nodes.length - 1)));
  const width = LEFT + NODE_WIDTH + 30 + LANE * Math.max(lanes.length, 1) + 90;
  const svg = el("svg", {
    class: "graph",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `pattern ${pattern.id || ""}: ${nodes.length} reactions`,
  });
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  defs.append(marker);
  svg.append(defs);

  let lane = 0;
  for (const edge of edges) {
    const from = boxes[edge.from];
    const classes = ["edge"];
    if (edge.expiry) classes.push("expiry");
    if (edge.implicit) classes.push("implicit");
    if (edge.dynamic) classes.push("dynamic");
    const g = el("g", { class: classes.join(" "), "data-from": nodes[edge.from].name, "data-to": edge.to === END ? END : nodes[edge.to].name });
    let d;
    let labelAt;
    const straightDown = edge.to === edge.from + 1 || (edge.to === END && edge.from === nodes.length - 1);
    if (straightDown && !edge.expiry) {
      const x = from.x + from.w / 2;
      const toY = edge.to === END ? end.y - 10 : boxes[edge.to].y;
      d = `M ${x} ${from.y + from.h} L ${x} ${toY}`;
      labelAt = { x: x + 6, y: from.y + from.h + 16 };
    } else {
      // A loop on one reaction stands out a little further, so it reads as a loop.
      const out = from.x + from.w + (edge.to === edge.from ? 44 : 24) + LANE * lane;
      lane += 1;
      const startY = from.y + from.h / 2 - 8 + (lane % 3) * 6;
      let toX;
      let toY;
      if (edge.to === END) {
        toX = end.x + 10;
        toY = end.y;
      } else {
        const to = boxes[edge.to];
        toX = to.x + to.w;
        toY = to.y + to.h / 2 + 8;
      }
      d = `M ${from.x + from.w} ${startY} C ${out} ${startY}, ${out} ${toY}, ${toX} ${toY}`;
      labelAt = { x: out + 4, y: (startY + toY) / 2 };
    }
    g.append(el("path", { d, "marker-end": "url(#arrow)" }));
    if (edge.label) g.append(el("text", { x: labelAt.x, y: labelAt.y, class: "edge-label" }, clip(edge.label, 28)));
    svg.append(g);
  }

  nodes.forEach((node, i) => {
    const box = boxes[i];
    const classes = ["node"];
    if (node.name === current) classes.push("current");
    const g = el("g", { class: classes.join(" "), "data-reaction": node.name });
    g.append(el("title", {}, [node.name, node.kind, ...node.lines].join("\n")));
    g.append(el("rect", { x: box.x, y: box.y, width: box.w, height: box.h, rx: 8 }));
    g.append(el("text", { x: box.x + 12, y: box.y + 20, class: "node-name" }, clip(node.name, 26)));
    g.append(el("text", { x: box.x + box.w - 12, y: box.y + 20, class: "node-kind", "text-anchor": "end" }, node.kind));
    node.lines.forEach((line, n) => {
      g.append(el("text", { x: box.x + 12, y: box.y + 38 + LINE * n, class: "node-line" }, clip(line, 38)));
    });
    svg.append(g);
  });

  const stop = el("g", { class: "node end", "data-reaction": END });
  stop.append(el("title", {}, "the thred ends"));
  stop.append(el("circle", { cx: end.x, cy: end.y, r: 10 }));
  stop.append(el("text", { x: end.x + 16, y: end.y + 4, class: "node-kind" }, "end"));
  svg.append(stop);
  return svg;
}
