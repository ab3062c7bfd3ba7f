// What the browser tests share: Chromium started for a machine without
// internet, failed steps that say what failed, GraphiQL's editors, flags.

import { chromium } from 'playwright-core';

// Without these, Chromium calls Google's hosts at start (and this machine has no internet).
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
];

/** A failed step: its message is what the script prints. */
export class StepError extends Error {}

export async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StepError) throw err;
    throw new StepError(`${name}: ${err.message.split('\n')[0]}`);
  }
}

export function check(condition, message) {
  if (!condition) throw new StepError(message);
}

// ---- in-page helpers (run inside the page, passed to page.evaluate) --------

/** The text of a GraphiQL editor: CodeMirror 5 keeps its instance on the wrapper. */
export function editorText(selector) {
  const el = document.querySelector(selector);
  return el && el.CodeMirror ? el.CodeMirror.getValue() : null;
}

export function setEditorText([selector, text]) {
  const el = document.querySelector(selector);
  if (!el || !el.CodeMirror) return false;
  el.CodeMirror.setValue(text);
  return true;
}

export const QUERY_EDITOR = '.graphiql-query-editor .CodeMirror';
export const VARIABLES_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
export const RESPONSE_EDITOR = '.result-window .CodeMirror';

/** Clicks GraphiQL's run button and returns what the response editor then shows. */
export async function execute(page, t, what) {
  await step(`run ${what}`, async () => {
    await page.evaluate(setEditorText, [RESPONSE_EDITOR, '']);
    await page.click('.graphiql-execute-button', { timeout: t });
  });
  return step(`the response editor shows the result of ${what}`, async () => {
    const handle = await page.waitForFunction(
      (sel) => {
        const el = document.querySelector(sel);
        const text = el && el.CodeMirror ? el.CodeMirror.getValue() : '';
        return /"(data|errors)"/.test(text) ? text : false;
      },
      RESPONSE_EDITOR,
      { timeout: t },
    );
    return handle.jsonValue();
  });
}

/**
 * Reads `argv` into `opts`: `flags` maps a flag that takes a value to the
 * option it sets (`['timeoutMs', Number]` converts it), `switches` a flag
 * without one to `[option, value]`. `--help` prints `usage` and exits.
 */
export function parseFlags(argv, opts, { flags, switches = {}, usage }) {
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(usage);
      process.exit(0);
    }
    if (arg in switches) {
      const [key, value] = switches[arg];
      opts[key] = value;
      continue;
    }
    if (!(arg in flags)) throw new Error(`unknown argument ${arg}`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${arg} needs a value`);
    i += 1;
    const [key, convert] = Array.isArray(flags[arg]) ? flags[arg] : [flags[arg], (x) => x];
    opts[key] = convert(v);
  }
  return opts;
}

/**
 * Starts headless Chromium (`opts.chromium`) and a context whose waits time
 * out after `opts.timeoutMs`; close the browser when done.
 */
export async function launch(opts) {
  const t = opts.timeoutMs;
  const browser = await step('launch Chromium', () =>
    chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS, timeout: t }),
  );
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(t);
  context.setDefaultNavigationTimeout(t);
  return { browser, context };
}
