import { h } from "../dom.js";
import { content } from "../md.js";
import { digitOf, field, plainKey } from "./common.js";

// The first words of a response, for a compact list.
function gist(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 90 ? text.slice(0, 89) + "…" : text;
}

export default {
  init(spec, data) { return { order: data[spec.responses_field].map((_, i) => i) }; },

  mount(ctx) {
    const { spec, data, t } = ctx;
    const responses = data[spec.responses_field];
    let focus = 0;
    let dragged = null;
    const move = (from, to) => ctx.update((s) => {
      const [item] = s.order.splice(from, 1);
      s.order.splice(to, 0, item);
    });
    const list = h("ol", { class: "ranking", "aria-label": t("ws.ranking") });
    ctx.root.append(h("div", { class: "content" }, field(data, spec.prompt_field, "prompt")),
      h("h3", { class: "small muted", text: t("ws.ranking") }), list);
    const view = {
      render(state) {
        while (list.firstChild) list.removeChild(list.firstChild);
        state.order.forEach((index, pos) => {
          const li = h("li", { class: "rank-item" + (pos === focus ? " focused" : ""), draggable: "true",
            dataset: { response: index, pos },
            ondragstart: (ev) => { dragged = pos; ev.dataTransfer.effectAllowed = "move"; ev.dataTransfer.setData("text/plain", String(pos)); },
            ondragover: (ev) => { ev.preventDefault(); li.classList.add("drop"); },
            ondragleave: () => li.classList.remove("drop"),
            ondrop: (ev) => { ev.preventDefault(); if (dragged !== null && dragged !== pos) { focus = pos; move(dragged, pos); } dragged = null; },
            onclick: () => { focus = pos; view.render(ctx.get()); },
          },
          h("span", { class: "rank-pos", text: String(pos + 1) }),
          h("div", { class: "rank-body" }, content(responses[index])),
          h("div", { class: "rank-move" },
            h("button", { type: "button", class: "ghost up", "aria-label": t("ws.move_up"), disabled: pos === 0,
              onclick: (ev) => { ev.stopPropagation(); focus = pos - 1; move(pos, pos - 1); } }, "↑"),
            h("button", { type: "button", class: "ghost down", "aria-label": t("ws.move_down"), disabled: pos === state.order.length - 1,
              onclick: (ev) => { ev.stopPropagation(); focus = pos + 1; move(pos, pos + 1); } }, "↓")));
          list.append(li);
        });
      },
      key(ev, state) {
        const n = state.order.length;
        const d = digitOf(ev);
        if (d !== null && plainKey(ev) && d >= 1 && d <= Math.min(9, n)) { focus = d - 1; view.render(state); return true; }
        const up = ev.key === "ArrowUp" || ev.code === "KeyK";
        const down = ev.key === "ArrowDown" || ev.code === "KeyJ";
        if ((!up && !down) || !plainKey(ev)) return false;
        const to = Math.max(0, Math.min(n - 1, focus + (up ? -1 : 1)));
        if (ev.shiftKey) { if (to !== focus) { const from = focus; focus = to; move(from, to); } }
        else { focus = to; view.render(state); }
        return true;
      },
    };
    return view;
  },

  state(spec, data, answer) {
    return Array.isArray(answer?.order) ? { order: [...answer.order] } : this.init(spec, data);
  },

  // The responses in this answer's order; a place the aggregated order fills otherwise is marked.
  show(spec, data, answer, reference, t) {
    const responses = data[spec.responses_field] ?? [];
    return h("ol", { class: "rv-ranking" }, (answer?.order ?? []).map((index, pos) => {
      const mark = reference && reference.order?.[pos] !== index ? "diff" : "same";
      return h("li", { class: mark === "diff" ? "diff" : "", dataset: { mark, response: index } },
        h("bdi", { dir: "auto", text: gist(responses[index]) }), " ",
        h("span", { class: "muted small", dir: "ltr", title: t("rv.response_number"), text: `#${index + 1}` }));
    }));
  },

  answer(spec, state) { return { order: [...state.order] }; },

  help(spec, t) {
    return [["↑ ↓ / J K", t("ws.key_rank_focus")], ["⇧↑ ⇧↓", t("ws.key_rank_move")], ["1–9", t("ws.key_rank_jump")]];
  },
};
