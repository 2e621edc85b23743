/**
 * Where JSON text goes wrong, as a line and a column. `JSON.parse` says
 * neither: V8's message quotes the text around the fault instead, which in a
 * job file can be long and span lines. So after a parse error the text is
 * walked once more by a small JSON scanner that stops at the first character
 * that cannot be there. Only a file that is not JSON pays for it.
 *
 * @module
 */

/**
 * Where JSON text goes wrong, as "unexpected X at line L, column C" (both
 * from 1). Should the scanner find no fault where `JSON.parse` found one,
 * the first line of V8's own message, cut to 200 characters.
 *
 * @param text The text `JSON.parse` rejected.
 * @param error What `JSON.parse` threw.
 * @returns One line for a message.
 *
 * @example Locate a stray comma
 * ```ts
 * import { describeJsonError } from "./_json_error.ts";
 * import assert from "node:assert";
 *
 * const text = '{\n  "jobs": [,]\n}';
 * let error = new Error();
 * try {
 *   JSON.parse(text);
 * } catch (thrown) {
 *   error = thrown as Error;
 * }
 * assert.strictEqual(describeJsonError(text, error), 'unexpected "," at line 2, column 12');
 * ```
 */
export function describeJsonError(text: string, error: Error): string {
  const offset = jsonErrorOffset(text);
  if (offset === undefined) return error.message.split("\n")[0].slice(0, 200);
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  const found = offset >= text.length ? "end of file" : `${JSON.stringify(text[offset])}`;
  return `unexpected ${found} at line ${line}, column ${column}`;
}

/**
 * The offset of the first character that makes `text` invalid JSON, or
 * `undefined` if none is found. A recursive descent whose steps share `at`
 * and throw it at a fault: the simplest scanner, as it runs only after a
 * parse error. Nesting too deep for the call stack also gives `undefined`.
 */
function jsonErrorOffset(text: string): number | undefined {
  let at = 0;
  const fail = (): never => {
    throw at;
  };
  const space = () => {
    while (at < text.length && " \t\r\n".includes(text[at])) at++;
  };
  const literal = (word: string) => {
    for (const char of word) if (text[at++] !== char) (at--, fail());
  };
  const string = () => {
    at++; // the quote
    while (at < text.length && text[at] !== '"') {
      if (text[at] === "\\") at++;
      else if (text.charCodeAt(at) < 0x20) fail();
      at++;
    }
    if (at >= text.length) fail();
    at++;
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(at, at + 400));
    if (!match || match[0] === "" || match[0] === "-") fail();
    at += match![0].length;
  };
  const value = (): void => {
    space();
    const char = text[at];
    if (char === "{") {
      at++;
      space();
      if (text[at] === "}") return void at++;
      for (;;) {
        space();
        if (text[at] !== '"') fail();
        string();
        space();
        if (text[at] !== ":") fail();
        at++;
        value();
        space();
        if (text[at] === ",") at++;
        else if (text[at] === "}") return void at++;
        else fail();
      }
    } else if (char === "[") {
      at++;
      space();
      if (text[at] === "]") return void at++;
      for (;;) {
        value();
        space();
        if (text[at] === ",") at++;
        else if (text[at] === "]") return void at++;
        else fail();
      }
    } else if (char === '"') string();
    else if (char === "t") literal("true");
    else if (char === "f") literal("false");
    else if (char === "n") literal("null");
    else if (char === "-" || (char >= "0" && char <= "9")) number();
    else fail();
  };
  try {
    value();
    space();
    return at < text.length ? at : undefined;
  } catch (offset) {
    return typeof offset === "number" ? offset : undefined;
  }
}
