// Audio classification: the player above the classification widget's labels (and the task's
// transcript when the spec names a text_field). Space plays or pauses, B goes back 2 seconds.
import classification from "./classification.js";
import { player, playerHelp } from "./player.js";

export default {
  ...classification,

  mount(ctx) {
    const p = player(ctx, ctx.data[ctx.spec.audio_field]);
    ctx.root.append(p.el);
    // The labels, with the transcript or the picture the spec names, and never the raw fields:
    // the recording is the task.
    const shown = ctx.spec.text_field || ctx.spec.image_field;
    const view = classification.mount({ ...ctx, data: shown ? ctx.data : {} });
    const empty = ctx.root.querySelector(".content .fields");
    if (empty && !empty.children.length) empty.closest(".content").remove();
    return { render: (state) => view.render(state), key: (ev, state) => p.key(ev) || view.key(ev, state) };
  },

  help(spec, t) { return [...playerHelp(t), ...classification.help(spec, t)]; },
};
