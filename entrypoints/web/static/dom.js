// Elements are built from text nodes only: task text never passes through an HTML parser.

export function byId(id) {
  return document.getElementById(id);
}

// h("li", {className: "task"}, "text", child): attributes are set as properties, except
// aria-*, data-* and "for", which only exist as attributes; strings become text nodes.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("aria-") || name.startsWith("data-") || name === "for") {
      element.setAttribute(name, value === true ? "" : String(value));
    } else {
      element[name] = value;
    }
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

export function setText(element, text) {
  element.textContent = text || "";
}
