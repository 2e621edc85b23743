// A parser of the Prometheus text exposition format, for the tests of every /metrics.
import assert from "node:assert";

/** One family as parsed: its HELP, its TYPE and its samples. */
export interface ParsedFamily {
  help?: string;
  type?: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/**
 * Parses the Prometheus text exposition format (0.0.4) by its grammar, and
 * throws at the first line that breaks it: HELP and TYPE at most once per
 * family and before its samples, every sample in a family whose TYPE came
 * first (a histogram's `_bucket`, `_sum` and `_count` in their base's), names
 * and label names as the format allows them, label values with only `\\`,
 * `\"` and `\n` escapes, values as Go's ParseFloat reads them.
 */
export function parseExposition(text: string): Map<string, ParsedFamily> {
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
  const VALUE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;
  assert(text.endsWith("\n"), "the text ends with a newline");
  const families = new Map<string, ParsedFamily>();
  const family = (name: string) => {
    if (!families.has(name)) families.set(name, { samples: [] });
    return families.get(name)!;
  };
  for (const [n, line] of text.slice(0, -1).split("\n").entries()) {
    const where = `line ${n + 1}: ${JSON.stringify(line)}`;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      assert.match(name, NAME, where);
      const f = family(name);
      assert.strictEqual(f.samples.length, 0, `${where}: after the family's samples`);
      if (kind === "HELP") {
        assert.strictEqual(f.help, undefined, `${where}: a second HELP`);
        assert.doesNotMatch(rest.replaceAll("\\\\", "").replaceAll("\\n", ""), /\\/, where);
        f.help = rest;
      } else {
        assert.strictEqual(f.type, undefined, `${where}: a second TYPE`);
        assert.match(rest, /^(counter|gauge|histogram|summary|untyped)$/, where);
        f.type = rest;
      }
      continue;
    }
    if (line.startsWith("#")) continue; // a comment
    const sample = /^([^{ ]+)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    assert(sample, `${where}: not a sample`);
    const [, name, labelText, valueText] = sample;
    assert.match(name, NAME, where);
    assert.match(valueText, VALUE, where);
    const labels: Record<string, string> = {};
    let rest = labelText ?? "";
    while (rest !== "") {
      const pair = /^([^=]+)="((?:[^"\\]|\\[\\"n])*)"(,|$)/.exec(rest);
      assert(pair, `${where}: bad labels at ${JSON.stringify(rest)}`);
      assert.match(pair[1], LABEL, where);
      assert(!(pair[1] in labels), `${where}: label ${pair[1]} twice`);
      labels[pair[1]] = pair[2].replace(/\\([\\"n])/g, (_, c) => c === "n" ? "\n" : c);
      rest = rest.slice(pair[0].length);
    }
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const owner = families.get(name)?.type !== undefined
      ? name
      : families.get(base)?.type === "histogram"
      ? base
      : undefined;
    assert(owner !== undefined, `${where}: no TYPE before this sample`);
    const value = valueText === "+Inf"
      ? Infinity
      : valueText === "-Inf"
      ? -Infinity
      : Number(valueText);
    family(owner).samples.push({ name, labels, value });
  }
  return families;
}
