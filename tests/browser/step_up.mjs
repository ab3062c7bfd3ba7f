#!/usr/bin/env node
// The step-up in Debian's headless Chromium, as a person meets it: signed in
// through the identity provider with a password only, the playground says
// there is no second factor; a query of cost data is refused, and the page
// offers to verify; verifying signs in again at the provider (prompt=login,
// max_age) with a one-time code, and back in the playground the same query
// runs by itself and answers; the header then says until when. With
// --until-weak, the page is then left open until that time has passed, and
// the header must say again, by itself, that there is no second factor.
//
//   node tests/browser/step_up.mjs --base http://127.0.0.1:8080 --issuer http://127.0.0.1:9000 \
//     [--login fiona] [--otp 123456] [--max-age 43200] [--until-weak] [--screenshot out.png]
//     [--timeout-ms 20000] [--chromium /usr/bin/chromium]
//
// Needs a `backplane serve` with browser sign-in through the test provider
// (tests/oidc-provider) and `npm ci` in tests/browser. Exits 0 with a
// one-line summary, or 1 saying what failed.

import {
  QUERY_EDITOR, RESPONSE_EDITOR, StepError, check, execute, launch, parseFlags, setEditorText, step,
} from './lib.mjs';

const USAGE =
  'usage: node tests/browser/step_up.mjs --base http://127.0.0.1:PORT --issuer http://127.0.0.1:PORT ' +
  '[--login fiona] [--otp 123456] [--max-age 43200] [--until-weak] [--screenshot out.png] [--timeout-ms 20000] ' +
  '[--chromium /usr/bin/chromium]';

const COST_QUERY = 'query Cost {\n  organizations(first: 1) {\n    nodes {\n      name\n      monthlyCostCents\n    }\n  }\n}\n';

function parseArgs(argv) {
  const opts = {
    base: null,
    issuer: null,
    login: 'fiona',
    otp: '123456',
    maxAge: 43200,
    untilWeak: false,
    screenshot: null,
    timeoutMs: 20_000,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  parseFlags(argv, opts, {
    flags: {
      '--base': 'base',
      '--issuer': 'issuer',
      '--login': 'login',
      '--otp': 'otp',
      '--max-age': ['maxAge', Number],
      '--screenshot': 'screenshot',
      '--timeout-ms': ['timeoutMs', Number],
      '--chromium': 'chromium',
    },
    switches: { '--until-weak': ['untilWeak', true] },
    usage: USAGE,
  });
  if (!opts.base || !opts.issuer) throw new Error('--base and --issuer are required');
  opts.base = opts.base.replace(/\/+$/, '');
  opts.origin = new URL(opts.base).origin;
  opts.issuerOrigin = new URL(opts.issuer).origin;
  return opts;
}

/** Signs in at the provider's form, with a one-time code when `otp` is given. */
async function providerSignIn(page, opts, otp, t) {
  await step('the provider\'s sign-in form', async () => {
    await page.waitForURL((u) => u.origin === opts.issuerOrigin && u.pathname.startsWith('/interaction/'), { timeout: t });
    await page.waitForSelector('input[name="login"]', { state: 'visible', timeout: t });
  });
  await step(`sign in as ${opts.login}${otp ? ' with a one-time code' : ' with a password only'}`, async () => {
    await page.fill('input[name="login"]', opts.login, { timeout: t });
    await page.fill('input[name="otp"]', otp || '', { timeout: t });
    await Promise.all([
      page.waitForURL((u) => u.origin === opts.origin && u.pathname === '/playground', { timeout: t }),
      page.click('button[type="submit"]', { timeout: t }),
    ]);
  });
  await step('GraphiQL renders', () => page.waitForSelector('.graphiql-container', { state: 'visible', timeout: t }));
}

/** Waits until the response editor holds JSON that `accept` takes; returns it parsed. */
async function responseWhere(page, t, what, accept) {
  return step(what, async () => {
    const handle = await page.waitForFunction(
      ([sel, source]) => {
        const el = document.querySelector(sel);
        const text = el && el.CodeMirror ? el.CodeMirror.getValue() : '';
        return new RegExp(source).test(text) ? text : false;
      },
      [RESPONSE_EDITOR, accept],
      { timeout: t },
    );
    return JSON.parse(await handle.jsonValue());
  });
}

async function run(opts) {
  const t = opts.timeoutMs;
  const started = Date.now();
  const requests = [];
  const problems = [];
  const { browser, context } = await launch(opts);
  try {
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`uncaught error in the page: ${err.message}`));

    // 1. A password-only sign-in.
    await step(`open ${opts.base}/playground`, () =>
      page.goto(`${opts.base}/playground`, { waitUntil: 'domcontentloaded', timeout: t }),
    );
    await providerSignIn(page, opts, null, t);
    await step('the header says there is no second factor', () =>
      page.waitForSelector('#bp-strength[data-strong="false"]', { state: 'visible', timeout: t }),
    );
    const weakTitle = await page.getAttribute('#bp-strength', 'title');
    check(weakTitle && weakTitle.includes('read:cost_data'), `the header does not name what waits: ${weakTitle}`);
    check(await page.isVisible('#bp-step-up-now'), 'no way to verify from the header');

    // 2. Cost data: refused, with the offer to verify.
    await step('put a cost-data query in the editor', async () => {
      const ok = await page.evaluate(setEditorText, [QUERY_EDITOR, COST_QUERY]);
      check(ok, 'no query editor');
      // GraphiQL learns the operation's name from an edit 100 ms later.
      await page.waitForTimeout(400);
    });
    const refusedText = await execute(page, t, 'the cost-data query');
    const refused = JSON.parse(refusedText);
    check(
      refused.errors && refused.errors[0].extensions.code === 'INSUFFICIENT_AUTHENTICATION',
      `the cost-data query was not refused for a step-up:\n${refusedText}`,
    );
    await step('the step-up banner offers to verify', () =>
      page.waitForSelector('#bp-step-up:not([hidden])', { state: 'visible', timeout: t }),
    );
    const bannerText = await page.textContent('#bp-step-up-text');
    check(bannerText.includes('read:cost_data'), `the banner does not name the right: ${bannerText}`);
    check(await page.isHidden('#bp-session-ended'), 'the page says the session ended: it did not');

    // 3. Verify: a new sign-in at the provider, with a one-time code.
    const before = requests.length;
    await step('click "Verify and run again"', () => page.click('#bp-verify', { timeout: t }));
    await providerSignIn(page, opts, opts.otp, t);
    const authorize = requests.slice(before).find((u) => {
      const url = new URL(u);
      return url.origin === opts.issuerOrigin && url.pathname === '/auth' && url.searchParams.has('client_id');
    });
    check(authorize, 'the step-up did not go to the provider\'s authorization endpoint');
    const params = new URL(authorize).searchParams;
    check(params.get('prompt') === 'login', `the step-up did not ask for a new sign-in (prompt=${params.get('prompt')})`);
    check(params.get('max_age') === String(opts.maxAge), `the step-up did not ask for a recent sign-in (max_age=${params.get('max_age')})`);

    // 4. Back: the query runs by itself, and answers.
    const answered = await responseWhere(page, t, 'the kept query runs again and answers', '"monthlyCostCents"\\s*:\\s*\\d');
    check(!answered.errors, `the query answered with errors after the step-up: ${JSON.stringify(answered)}`);
    const cost = answered.data.organizations.nodes[0].monthlyCostCents;
    await step('the header says the second factor holds, and until when', () =>
      page.waitForSelector('#bp-strength[data-strong="true"]', { state: 'visible', timeout: t }),
    );
    const strongText = await page.textContent('#bp-strength');
    check(/second factor until \d\d:\d\d/.test(strongText), `the header says: ${strongText}`);
    check(await page.isHidden('#bp-step-up-now'), 'the header still offers to verify');
    check(await page.isHidden('#bp-step-up'), 'the step-up banner is still shown');

    // 5. Left open past the second factor's time, the header says so by itself.
    let lapsed = '';
    if (opts.untilWeak) {
      const session = await page.evaluate(() =>
        fetch('/auth/session', { credentials: 'same-origin', cache: 'no-store' }).then((r) => r.json()),
      );
      const left = Date.parse(session.strongUntil) - Date.now();
      check(left > 0 && left <= opts.maxAge * 1000, `the second factor holds until ${session.strongUntil}`);
      await step('the header turns back to no second factor when its time is up, without a reload', () =>
        page.waitForSelector('#bp-strength[data-strong="false"]', { state: 'visible', timeout: left + t }),
      );
      check(await page.isVisible('#bp-step-up-now'), 'the header does not offer to verify again');
      lapsed = `; after ${session.strongUntil} it says "${await page.textContent('#bp-strength')}"`;
    }

    const foreign = requests.filter((u) => {
      const origin = new URL(u).origin;
      return origin !== opts.origin && origin !== opts.issuerOrigin && !u.startsWith('data:');
    });
    check(foreign.length === 0, `requests to other hosts: ${foreign.join(', ')}`);
    check(problems.length === 0, problems.join('\n'));
    if (opts.screenshot) await page.screenshot({ path: opts.screenshot, fullPage: true });
    console.log(
      `ok: ${opts.login} was refused cost data with a password only, verified with a one-time code ` +
      `(prompt=login, max_age=43200), and the query ran again by itself (monthlyCostCents ${cost}); ` +
      `header "${strongText}"${lapsed} (${Date.now() - started} ms)`,
    );
  } finally {
    await browser.close();
  }
}

try {
  await run(parseArgs(process.argv.slice(2)));
} catch (err) {
  console.error(`FAILED: ${err instanceof StepError ? err.message : err.stack || err}`);
  process.exit(1);
}
