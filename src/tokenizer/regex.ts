/**
 * Patterns in tokenizer.json: {"String": "..."} (literal) or {"Regex": "..."} (Oniguruma syntax in the Rust
 * library). Oniguruma and JavaScript agree on most of what tokenizer files use; the differences that matter are
 * translated here:
 * - \s \S \w \W \d \D are Unicode-aware in Oniguruma, ASCII-ish in JS → explicit property classes;
 * - scoped flags `(?i:...)` do not exist in Node 20 → letters spelled out as [xX];
 * - possessive quantifiers (x++ x*+ x?+) and atomic groups do not exist → plain ones (same matches for the
 *   patterns tokenizers use, which never need backtracking into them).
 */
import { XverseError } from "../errors.js";

export interface HfPattern {
  /** Match ranges [start, end) in UTF-16 units, flattened. */
  find(s: string): number[];
}

const SPACE = "\\p{White_Space}";
const WORD = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
const DIGIT = "\\p{Nd}";

/** Oniguruma pattern → JavaScript `u` pattern source. */
export function translateOniguruma(src: string, oniguruma = true): string {
  let out = "";
  let inClass = 0;
  let ci = 0; // depth of (?i: groups still open, tracked by paren depth
  const ciStack: boolean[] = [];
  let prevQuant = false; // the previous token was a quantifier (so + or ? after it is possessive / lazy)
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    const wasQuant = prevQuant;
    prevQuant = false;
    if (c === "\\") {
      const n = src[i + 1];
      i++;
      const cls = (x: string): string => (inClass ? x : `[${x}]`);
      switch (n) {
        case "s": out += inClass ? SPACE : `[${SPACE}]`; break;
        case "S": out += inClass ? "\\P{White_Space}" : `[^${SPACE}]`; break;
        case "w": out += cls(WORD); break;
        case "W": out += inClass ? unsupportedInClass("\\W") : `[^${WORD}]`; break;
        case "d": out += cls(DIGIT); break;
        case "D": out += inClass ? "\\P{Nd}" : `[^${DIGIT}]`; break;
        case "A": out += "^"; break;
        case "z": case "Z": out += "$"; break;
        case "h": out += inClass ? "0-9a-fA-F" : "[0-9a-fA-F]"; break;
        case "p": case "P": {
          // \p{L} and friends are the same; Oniguruma also allows \p{^L} for negation.
          const end = src.indexOf("}", i);
          // "\p{L" with no closing brace: end = -1 sent i back to the start, looping until out of memory (fuzz finding)
          if (src[i + 1] !== "{" || end < 0) throw new XverseError("unsupported", `regex ${JSON.stringify(src)}: \\${n} at ${i} must be written \\${n}{Name}`);
          let body = src.slice(i + 2, end);
          let neg = n === "P";
          if (body.startsWith("^")) { neg = !neg; body = body.slice(1); }
          out += `\\${neg ? "P" : "p"}{${body}}`;
          i = end;
          break;
        }
        default:
          // JS `u` mode rejects identity escapes of non-syntax characters (e.g. \' or \-outside a class).
          if (/[A-Za-z0-9]/.test(n) || "^$\\.*+?()[]{}|/".includes(n) || (inClass && n === "-")) out += "\\" + n;
          else out += n;
      }
      continue;
    }
    if (inClass) {
      // Oniguruma nests classes ([a[b]], [[:alpha:]], &&); JavaScript `u` mode has none of it.
      if (c === "[" || (c === "&" && src[i + 1] === "&")) unsupportedInClass(c === "[" ? "nested [...] or [:posix:]" : "&&");
      if (c === "]") inClass = 0;
      // A letter inside (?i:[...]) would need both cases; say so rather than match one.
      if (ci > 0 && /[A-Za-z]/.test(c)) throw new XverseError("unsupported", "regex character classes inside (?i:...) are not supported");
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = 1;
      out += c;
      if (src[i + 1] === "^") { out += "^"; i++; }
      if (src[i + 1] === "]") { out += "\\]"; i++; }
      continue;
    }
    if (c === "(") {
      if (src.startsWith("(?i:", i)) {
        ciStack.push(true);
        ci++;
        out += "(?:";
        i += 3;
        continue;
      }
      if (src.startsWith("(?>", i)) {
        ciStack.push(false);
        out += "(?:";
        i += 2;
        continue;
      }
      ciStack.push(false);
      out += c;
      continue;
    }
    if (c === ")") {
      if (ciStack.pop()) ci--;
      out += c;
      continue;
    }
    if (!inClass && (c === "+" || c === "*" || c === "?")) {
      if (wasQuant) {
        // possessive (x++, x*+, x?+) → greedy; lazy (x+?, x*?) stays
        prevQuant = false;
        if (c === "+") continue;
        out += c;
        continue;
      }
      prevQuant = true;
      out += c;
      continue;
    }
    if (c === "{") {
      const q = /^\{\d+(,\d*)?\}/.exec(src.slice(i));
      if (q) {
        out += q[0];
        i += q[0].length - 1;
        prevQuant = true;
        continue;
      }
    }
    // Oniguruma (Ruby syntax): `.` excludes only \n, and ^ / $ are line anchors. llama.cpp's std::regex
    // patterns (oniguruma = false) keep ECMAScript meanings, which JavaScript shares.
    if (oniguruma && c === ".") {
      out += "[^\\n]";
      continue;
    }
    if (oniguruma && c === "^") {
      out += "(?<![^\\n])";
      continue;
    }
    if (oniguruma && c === "$") {
      out += "(?![^\\n])";
      continue;
    }
    if (ci > 0 && /[A-Za-z]/.test(c)) {
      out += `[${c.toLowerCase()}${c.toUpperCase()}]`;
      continue;
    }
    out += c;
  }
  return out;
}

function unsupportedInClass(what: string): never {
  throw new XverseError("unsupported", `regex ${what} inside a character class is not supported`);
}

export function compileHfPattern(j: unknown, where: string): HfPattern {
  const o = (j ?? {}) as Record<string, unknown>;
  if (typeof o.String === "string") {
    const lit = o.String;
    return {
      find(s: string): number[] {
        const r: number[] = [];
        if (lit.length === 0) return r;
        for (let i = s.indexOf(lit); i !== -1; i = s.indexOf(lit, i + lit.length)) r.push(i, i + lit.length);
        return r;
      },
    };
  }
  if (typeof o.Regex === "string") return regexPattern(o.Regex, where);
  throw new XverseError("bad_tokenizer", `${where}: pattern must be {"String": ...} or {"Regex": ...}`);
}

export function regexPattern(onig: string, where: string): HfPattern {
  let re: RegExp;
  try {
    re = new RegExp(translateOniguruma(onig), "gu");
  } catch (e) {
    throw new XverseError("unsupported", `${where}: regex ${JSON.stringify(onig)} could not be translated to JavaScript (${(e as Error).message})`);
  }
  return {
    find(s: string): number[] {
      const r: number[] = [];
      re.lastIndex = 0;
      for (let m = re.exec(s); m !== null; m = re.exec(s)) {
        const a = m.index;
        const b = a + m[0].length;
        if (b === a) {
          // Empty match: record it (it affects merge behaviours) and step over one character.
          r.push(a, a);
          re.lastIndex = a + (s.codePointAt(a)! > 0xffff ? 2 : 1);
          if (a >= s.length) break;
          continue;
        }
        r.push(a, b);
      }
      return r;
    },
  };
}
