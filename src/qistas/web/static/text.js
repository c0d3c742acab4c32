// Offsets of spans are code points of the original text (what Python's str counts), but the
// browser's strings and selections count UTF-16 units. CodePoints converts between the two
// and knows the grapheme boundaries, so a selection never splits an emoji or a letter from
// its combining marks.

export class CodePoints {
  constructor(text) {
    this.text = text;
    this.points = Array.from(text);
    this.u16 = [0];
    for (const cp of this.points) this.u16.push(this.u16[this.u16.length - 1] + cp.length);
    this.graphemes = [0];
    if (typeof Intl !== "undefined" && Intl.Segmenter) {
      for (const seg of new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(text)) {
        if (seg.index > 0) this.graphemes.push(this.fromU16(seg.index));
      }
    } else {
      for (let i = 1; i < this.points.length; i++) this.graphemes.push(i);
    }
    if (this.length > 0) this.graphemes.push(this.length);
    this.words = [0];
    if (typeof Intl !== "undefined" && Intl.Segmenter) {
      for (const seg of new Intl.Segmenter(undefined, { granularity: "word" }).segment(text)) {
        if (seg.index > 0) this.words.push(this.fromU16(seg.index));
      }
    }
    if (this.length > 0) this.words.push(this.length);
  }

  get length() { return this.points.length; }

  slice(start, end) { return this.text.slice(this.u16[start], this.u16[end]); }

  // Code point index of a UTF-16 offset (inside a surrogate pair: the pair's start).
  fromU16(offset) {
    let lo = 0, hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.u16[mid] <= offset) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  snapDown(cp) {
    let best = 0;
    for (const g of this.graphemes) { if (g <= cp) best = g; else break; }
    return best;
  }

  snapUp(cp) {
    for (const g of this.graphemes) if (g >= cp) return g;
    return this.length;
  }
}

export function countCodePoints(s) {
  let n = 0;
  for (const _ of s) n++;
  return n;
}
