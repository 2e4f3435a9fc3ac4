// The official MJML compiler as a reference for the test suite (production compiles with mrml in-process).
//
//   node compile.js [--validation strict|soft|skip] [--repeat N]  < issue.mjml  > {"html", "errors", "ms"}
//
// Reads one MJML document on stdin and writes one JSON object on stdout: the HTML (empty when strict validation
// rejects the document), the validation errors ({line, message, tagName}), and with --repeat N the mean time of
// N compiles in this one process (the long-running-process cost, without node's start-up).
"use strict";

const mjml2html = require("mjml");

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function plainErrors(errors) {
  return (errors || []).map((e) => ({ line: e.line, message: e.message, tagName: e.tagName }));
}

async function compile(source, validationLevel) {
  try {
    // mjml 5 returns a promise; `await` also accepts the plain object mjml 4 returned.
    const result = await mjml2html(source, { validationLevel });
    return { html: result.html, errors: plainErrors(result.errors) };
  } catch (err) {
    // Strict validation throws a ValidationError whose `errors` lists every error.
    if (err && Array.isArray(err.errors)) return { html: "", errors: plainErrors(err.errors) };
    return { html: "", errors: [{ line: null, message: String((err && err.message) || err), tagName: null }] };
  }
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const source = Buffer.concat(chunks).toString("utf8");
  const validationLevel = option("--validation", "strict");
  const repeat = Math.max(1, parseInt(option("--repeat", "1"), 10) || 1);

  let result = await compile(source, validationLevel); // the first compile also loads mjml's components
  let ms = null;
  if (repeat > 1) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < repeat; i += 1) result = await compile(source, validationLevel);
    ms = Number(process.hrtime.bigint() - start) / 1e6 / repeat;
  }
  process.stdout.write(JSON.stringify({ ...result, ms }));
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + "\n");
  process.exit(2);
});
