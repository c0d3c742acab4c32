// Audio transcription: the player above the text widget's text area (and its draft, data.draft).
// The text area keeps the focus: Ctrl+Space plays or pauses, Ctrl+B goes back 2 seconds; after
// Esc, Space, B, - and = do the same without Ctrl.
import text from "./text.js";
import { player, playerHelp, typingKeys } from "./player.js";

export default {
  ...text,

  mount(ctx) {
    const p = player(ctx, ctx.data[ctx.spec.audio_field]);
    ctx.root.append(p.el);
    const view = text.mount(ctx);
    typingKeys(ctx.root.querySelector("textarea"), p);
    return { render: (state) => view.render(state), key: (ev, state) => p.key(ev) || view.key(ev, state) };
  },

  help(spec, t) { return [...playerHelp(t, true), ...text.help(spec, t)]; },
};
