/**
 * RFC 4180 CSV: fields separated by commas, records by CRLF or LF, a field in double quotes may hold commas,
 * newlines and doubled quotes (""). The benchmark CSVs (MMLU, C-Eval, CMMLU) rely on all three: explanations
 * span lines and answer options such as "True, True" contain commas.
 */
import { XverseError } from "../errors.js";

/** Parses CSV text into rows of string fields. A UTF-8 BOM is dropped; a trailing newline adds no empty row. */
export function parseCsv(text: string, where = "CSV"): string[][] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let i = 0;
  let line = 1;
  // `fieldStarted` separates "an empty last field" (a,b,) from "no field at all" (end of input after a newline).
  let fieldStarted = false;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '"' && field === "" && !midField(text, i)) {
      // An opening quote: read to the matching closing quote.
      const startLine = line;
      i++;
      for (;;) {
        if (i >= n) throw new XverseError("bad_data", `${where}: unterminated quoted field starting on line ${startLine}`);
        const d = text[i];
        if (d === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        if (d === "\n") line++;
        field += d;
        i++;
      }
      fieldStarted = true;
      // After the closing quote only a separator or a record end may follow.
      if (i < n && text[i] !== "," && text[i] !== "\n" && text[i] !== "\r") {
        throw new XverseError("bad_data", `${where}: unexpected character after a closing quote on line ${line}`);
      }
      continue;
    }
    if (c === ",") { row.push(field); field = ""; fieldStarted = true; i++; continue; }
    if (c === "\r" || c === "\n") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      i++;
      line++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      fieldStarted = false;
      continue;
    }
    field += c;
    fieldStarted = true;
    i++;
  }
  if (fieldStarted || row.length > 0) { row.push(field); rows.push(row); }
  return rows;
}

// A quote is only special at the very start of a field; `field === ""` alone cannot tell `a,"b"` from `a,b""`.
function midField(text: string, i: number): boolean {
  return i > 0 && text[i - 1] !== "," && text[i - 1] !== "\n" && text[i - 1] !== "\r";
}
