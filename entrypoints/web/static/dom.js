// Elements are built from text nodes only: task text never passes through an HTML parser.

export function byId(id) {
  return document.getElementById(id);
}

// h("li", {className: "task"}, "text", child): attributes are set as properties, except
// role, aria-*, data-* and "for", set as attributes (every browser reads those); strings
// become text nodes.
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "role" || name === "for" || name.startsWith("aria-") || name.startsWith("data-")) {
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
