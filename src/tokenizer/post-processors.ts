/**
 * Post-processors from tokenizer.json: add special tokens around an encoding (TemplateProcessing, Bert/Roberta)
 * and ByteLevel's offset trimming. Special tokens added here have offsets [0, 0], as in the Rust library.
 */
import { XverseError } from "../errors.js";
import type { Encoding } from "./types.js";
import { pushAll } from "../arrays.js";

/** Rewrites an encoding; `addSpecial` says whether special tokens may be added. */
export type PostProcessor = (e: Encoding, addSpecial: boolean) => Encoding;

type Json = Record<string, any>;

export function buildPostProcessor(j: Json | null | undefined): PostProcessor | null {
  if (j == null) return null;
  switch (j.type) {
    case "Sequence": {
      const steps = ((j.processors ?? []) as Json[]).map((x) => buildPostProcessor(x)).filter((x): x is PostProcessor => x !== null);
      return (e, add) => {
        for (const s of steps) e = s(e, add);
        return e;
      };
    }
    case "TemplateProcessing":
      return template(j);
    case "ByteLevel": {
      const trim = j.trim_offsets !== false;
      const prefix = j.add_prefix_space !== false;
      return (e) => (trim ? trimByteLevelOffsets(e, prefix) : e);
    }
    case "BertProcessing":
    case "RobertaProcessing": {
      const [sepT, sepId] = j.sep as [string, number];
      const [clsT, clsId] = j.cls as [string, number];
      return (e, add) => {
        if (!add) return e;
        return {
          ids: [clsId, ...e.ids, sepId],
          tokens: [clsT, ...e.tokens, sepT],
          offsets: [[0, 0], ...e.offsets, [0, 0]],
        };
      };
    }
    default:
      throw new XverseError("unsupported", `post_processor type ${j.type} is not supported`);
  }
}

function template(j: Json): PostProcessor {
  const specials = (j.special_tokens ?? {}) as Record<string, { ids: number[]; tokens: string[] }>;
  const single = (j.single ?? []) as Json[];
  return (e, add) => {
    if (!add) return e;
    const out: Encoding = { ids: [], tokens: [], offsets: [] };
    for (const item of single) {
      if (item.SpecialToken) {
        const name = item.SpecialToken.id as string;
        const sp = specials[name];
        if (!sp) throw new XverseError("bad_tokenizer", `TemplateProcessing uses special token "${name}" that is not in special_tokens`);
        for (let i = 0; i < sp.ids.length; i++) {
          out.ids.push(sp.ids[i]);
          out.tokens.push(sp.tokens[i]);
          out.offsets.push([0, 0]);
        }
      } else if (item.Sequence) {
        if (item.Sequence.id !== "A") continue; // single sequences only; B belongs to pairs
        pushAll(out.ids, e.ids);
        pushAll(out.tokens, e.tokens);
        pushAll(out.offsets, e.offsets);
      }
    }
    return out;
  };
}

/** ByteLevel trim_offsets: offsets stop covering the spaces ("Ġ") a token starts or ends with. */
function trimByteLevelOffsets(e: Encoding, addPrefixSpace: boolean): Encoding {
  const isSpace = (c: string): boolean => c === "\u0120" || /^\p{White_Space}$/u.test(c);
  const offsets = e.offsets.map((o, i): [number, number] => {
    const chars = Array.from(e.tokens[i]);
    let lead = 0;
    while (lead < chars.length && isSpace(chars[lead])) lead++;
    let trail = 0;
    while (trail < chars.length && isSpace(chars[chars.length - 1 - trail])) trail++;
    let [a, b] = o;
    if (lead > 0) {
      if ((i === 0 || a === 0) && addPrefixSpace && lead === 1) lead = 0;
      a = Math.min(a + lead, b);
    }
    if (trail > 0 && b >= trail) b = Math.max(b - trail, a);
    return [a, b];
  });
  return { ids: e.ids, tokens: e.tokens, offsets };
}
