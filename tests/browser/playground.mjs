#!/usr/bin/env node
// Drives the playground in Debian's headless Chromium, as a person would:
// dev sign-in, GraphiQL with who-you-are, the "lookup" example run for real,
// the session ending and the query surviving a new sign-in; and no request to
// any host but the server's own.
//
//   node tests/browser/playground.mjs --base http://127.0.0.1:8080 \
//     [--screenshot out.png] [--role support] [--staff demo-support] \
//     [--timeout-ms 20000] [--chromium /usr/bin/chromium] [--no-session-end]
//
// Needs a server started with `backplane dev` (the dev sign-in page) and
// `npm ci` in tests/browser. Exits 0 with a one-line summary, or 1 saying what failed.

import { readFileSync } from 'node:fs';
import {
  QUERY_EDITOR, RESPONSE_EDITOR, StepError, VARIABLES_EDITOR,
  check, editorText, execute, launch, parseFlags, setEditorText, step,
} from './lib.mjs';

const USAGE =
  'usage: node tests/browser/playground.mjs --base http://127.0.0.1:PORT [--screenshot out.png] ' +
  '[--role support] [--staff demo-support] [--timeout-ms 20000] [--chromium /usr/bin/chromium] [--no-session-end]';


/** Typed into GraphiQL's Headers tab: must reach the server, must never be stored. */
const PROBE_HEADER = 'X-Playground-Check';
const PROBE_VALUE = `probe-${process.pid}-${Date.now()}`;

function parseArgs(argv) {
  const opts = {
    base: null,
    screenshot: null,
    role: 'support',
    staff: 'demo-support',
    timeoutMs: 20_000,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
    sessionEnd: true,
  };
  parseFlags(argv, opts, {
    flags: {
      '--base': 'base',
      '--screenshot': 'screenshot',
      '--role': 'role',
      '--staff': 'staff',
      '--timeout-ms': ['timeoutMs', Number],
      '--chromium': 'chromium',
    },
    switches: { '--no-session-end': ['sessionEnd', false] },
    usage: USAGE,
  });
  if (!opts.base) throw new Error('--base is required');
  opts.base = opts.base.replace(/\/+$/, '');
  opts.origin = new URL(opts.base).origin;
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) throw new Error('--timeout-ms must be a positive number');
  return opts;
}

// ---- the run ----------------------------------------------------------------

async function signIn(page, opts, t) {
  await step('dev sign-in page', async () => {
    await page.waitForURL((u) => u.pathname === '/auth/dev', { timeout: t });
    await page.waitForSelector('form#dev-sign-in', { state: 'visible', timeout: t });
  });
  await step(`choose ${opts.staff} as ${opts.role}`, async () => {
    const staff = await page.selectOption('#dev-sign-in select[name="staff"]', opts.staff, { timeout: t });
    check(staff.includes(opts.staff), `no staff member ${opts.staff} on the dev sign-in page`);
    // One role or several (`--role support,ops`): a box ticked for each.
    for (const role of opts.role.split(',')) {
      const box = `#dev-sign-in input[name="role"][value="${role}"]`;
      check((await page.$(box)) !== null, `no role ${role} on the dev sign-in page`);
      await page.check(box, { timeout: t });
    }
  });
  await step('submit the dev sign-in form', async () => {
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/playground', { timeout: t }),
      page.click('#dev-sign-in button[type="submit"]', { timeout: t }),
    ]);
  });
}

async function waitForPlayground(page, opts, t) {
  await step('GraphiQL renders', () => page.waitForSelector('.graphiql-container', { state: 'visible', timeout: t }));
  await step(`#bp-identity shows the roles ${opts.role}`, () =>
    page.waitForFunction(
      (roles) => {
        const header = document.querySelector('#bp-identity');
        return !!header && roles.every((role) => !!header.querySelector(`[data-role="${role}"]`) && header.textContent.includes(role));
      },
      opts.role.split(','),
      { timeout: t },
    ),
  );
  await step('the query editor is ready', () =>
    page.waitForFunction((sel) => {
      const el = document.querySelector(sel);
      return !!(el && el.CodeMirror);
    }, QUERY_EDITOR, { timeout: t }),
  );
}

async function run(opts) {
  const t = opts.timeoutMs;
  const started = Date.now();
  const requests = [];
  const problems = [];
  const { browser, context } = await launch(opts);
  try {
    context.on('request', (r) => requests.push({ url: r.url(), method: r.method(), failed: null }));
    context.on('requestfailed', (r) => {
      const failure = r.failure();
      requests.push({ url: r.url(), method: r.method(), failed: failure ? failure.errorText : 'failed' });
    });
    const page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`uncaught error in the page: ${err.message}`));
    page.on('console', (msg) => {
      const text = msg.text();
      if (/Content Security Policy/i.test(text)) problems.push(`CSP violation: ${text}`);
      // The session-end step's 401 is expected; other errors are shown, not failed on.
      else if (msg.type() === 'error' && !/status of 401/.test(text)) console.error(`page console error: ${text}`);
    });

    // 1. Not signed in: the page sends us to sign-in, which in dev is /auth/dev.
    await step(`open ${opts.base}/playground`, () =>
      page.goto(`${opts.base}/playground`, { waitUntil: 'domcontentloaded', timeout: t }),
    );
    await signIn(page, opts, t);
    const login = requests.find((r) => {
      const u = new URL(r.url);
      return u.origin === opts.origin && u.pathname === '/auth/login';
    });
    check(login, 'the page did not send the browser to /auth/login');
    check(
      new URL(login.url).searchParams.get('return_to') === '/playground',
      `sign-in was not asked to return to /playground: ${login.url}`,
    );

    // 2. Signed in: GraphiQL and who we are.
    await waitForPlayground(page, opts, t);
    const identity = await page.evaluate(() => {
      const name = document.querySelector('#bp-user-name');
      const roles = Array.from(document.querySelectorAll('#bp-identity [data-role]'), (e) => e.getAttribute('data-role'));
      return `${name ? name.textContent : '?'} [${roles.join(', ')}]`;
    });
    const signOut = await page.getAttribute('#bp-sign-out', 'href');
    check(signOut, '#bp-sign-out has no href');

    // 3. A header typed in GraphiQL's Headers tab goes with the request.
    await step('type a header in the Headers tab', async () => {
      await page.click('button[data-name="headers"]', { timeout: t });
      const ok = await page.evaluate(setEditorText, [VARIABLES_EDITOR, JSON.stringify({ [PROBE_HEADER]: PROBE_VALUE })]);
      check(ok, 'no Headers editor');
      await page.click('button[data-name="variables"]', { timeout: t });
    });

    // 4. The lookup example, run for real.
    // The page marks each example available or not once the role's schema is
    // in: this is also the check that introspection works through the page.
    await step('the schema loads (introspection through the page\'s fetcher)', () =>
      page.waitForSelector('[data-example="lookup"][data-available]', { timeout: t }),
    );
    await step('load the "lookup" example', async () => {
      const available = await page.getAttribute('[data-example="lookup"]', 'data-available');
      check(available === 'true', `the lookup example is not available to the role ${opts.role}`);
      await page.click('[data-example="lookup"]', { timeout: t });
      await page.waitForFunction(
        (sel) => {
          const el = document.querySelector(sel);
          return !!(el && el.CodeMirror && el.CodeMirror.getValue().includes('organizationBySlug'));
        },
        QUERY_EDITOR,
        { timeout: t },
      );
    });
    const graphqlRequest = page.waitForRequest(
      (r) => r.url() === `${opts.base}/graphql` && r.method() === 'POST' && (r.postData() || '').includes('Lookup'),
      { timeout: t },
    );
    const resultText = await execute(page, t, 'the lookup example');
    const sent = await graphqlRequest;
    const sentHeaders = await sent.allHeaders();
    check(sentHeaders[PROBE_HEADER.toLowerCase()] === PROBE_VALUE, `the ${PROBE_HEADER} header from the Headers tab was not sent`);
    check((sentHeaders['content-type'] || '').startsWith('application/json'), `Content-Type was ${sentHeaders['content-type']}`);
    check((sentHeaders.accept || '').includes('application/graphql-response+json'), `Accept was ${sentHeaders.accept}`);
    let result;
    try {
      result = JSON.parse(resultText);
    } catch {
      throw new StepError(`the response editor does not hold JSON:\n${resultText}`);
    }
    console.log(resultText);
    check(!('errors' in result), `the lookup example answered with errors:\n${resultText}`);
    check(result.data && typeof result.data === 'object', 'the lookup example answered without data');
    const nullFields = Object.keys(result.data).filter((k) => result.data[k] === null);
    check(nullFields.length === 0, `the lookup example found nothing for: ${nullFields.join(', ')} (is the demo data seeded?)`);

    // 4b. The support examples that change something: a reply, run for real.
    let reply = 'skipped';
    if (opts.role.split(',').some((r) => ['support', 'admin'].includes(r))) {
      for (const name of ['reply', 'note', 'reassign']) {
        const available = await page.getAttribute(`[data-example="${name}"]`, 'data-available');
        check(available === 'true', `the ${name} example is not available to the role ${opts.role}`);
      }
      await step('load the "reply" example', async () => {
        await page.click('[data-example="reply"]', { timeout: t });
        await page.waitForFunction(
          (sel) => {
            const el = document.querySelector(sel);
            return !!(el && el.CodeMirror && el.CodeMirror.getValue().includes('replyToTicket'));
          },
          QUERY_EDITOR,
          { timeout: t },
        );
      });
      const replyText = await execute(page, t, 'the reply example');
      let replied;
      try {
        replied = JSON.parse(replyText);
      } catch {
        throw new StepError(`the response editor does not hold JSON:\n${replyText}`);
      }
      check(!('errors' in replied), `the reply example answered with errors:\n${replyText}`);
      const payload = replied.data && replied.data.replyToTicket;
      check(payload && payload.message && payload.message.internal === false, `the reply is not a customer-visible message:\n${replyText}`);
      check(payload.change && payload.change.fields[0].field === 'messages', `the reply's change does not name the messages:\n${replyText}`);
      reply = 'reply example posted a message';
    }

    // 5. The screenshot, with the result showing.
    if (opts.screenshot) {
      await step('screenshot', () => page.screenshot({ path: opts.screenshot, timeout: t }));
    }

    // 5b. "Export CSV" saves every row of the editor's list as a file.
    const EXPORT_QUERY = 'query Staff { tickets(filter: { status: [OPEN] }) { nodes { id subject status priority } } }';
    await step('put an exportable query in the editor', async () => {
      const ok = await page.evaluate(setEditorText, [QUERY_EDITOR, EXPORT_QUERY]);
      check(ok, 'no query editor');
      await page.evaluate(setEditorText, [VARIABLES_EDITOR, '']);
    });
    const download = await step('click "Export CSV" and get the file', async () => {
      const [file] = await Promise.all([
        page.waitForEvent('download', { timeout: t }),
        page.click('#bp-export', { timeout: t }),
      ]);
      return file;
    });
    const csvPath = await step('the file is saved', () => download.path());
    const csv = readFileSync(csvPath, 'utf8');
    const csvRows = csv.split('\r\n').filter((r) => r !== '');
    check(csvRows[0] === 'id,subject,status,priority', `the export's header is ${JSON.stringify(csvRows[0])}`);
    check(csvRows.length > 1 && csvRows.slice(1).every((r) => r.includes(',OPEN,')), `the export's rows are not the open tickets:\n${csv.slice(0, 500)}`);
    check(/^tickets-\d{4}-\d{2}-\d{2}\.csv$/.test(download.suggestedFilename()), `the file is named ${download.suggestedFilename()}`);
    const exported = `export saved ${csvRows.length - 1} rows`;

    // 6. Headers are never stored.
    const stored = await page.evaluate(() => {
      const all = [];
      for (const s of [localStorage, sessionStorage]) {
        for (let i = 0; i < s.length; i += 1) all.push(`${s.key(i)}=${s.getItem(s.key(i))}`);
      }
      return all.join('\n');
    });
    check(!stored.includes(PROBE_VALUE), 'a header typed in the Headers tab was saved in the browser storage');

    // 7. The session ends: a cookie the server can no longer read is an ended
    // session (401). The banner shows; "Sign in again" keeps the query.
    let sessionEnd = 'skipped';
    if (opts.sessionEnd) {
      const cookies = await context.cookies(opts.base);
      check(cookies.length > 0, 'no session cookie after signing in');
      await context.addCookies(cookies.map((c) => ({ ...c, value: 'ended' })));
      const ended = await execute(page, t, 'the lookup example with an ended session');
      check(/UNAUTHENTICATED/.test(ended), `an ended session did not answer UNAUTHENTICATED:\n${ended}`);
      await step('#bp-session-ended shows', () =>
        page.waitForSelector('#bp-session-ended', { state: 'visible', timeout: t }),
      );
      const keptQuery = await page.evaluate(editorText, QUERY_EDITOR);
      await step('click "Sign in again"', () => page.click('#bp-session-ended button', { timeout: t }));
      await signIn(page, opts, t);
      await waitForPlayground(page, opts, t);
      await step('the kept query is back in the editor', () =>
        page.waitForFunction(
          ([sel, text]) => {
            const el = document.querySelector(sel);
            return !!(el && el.CodeMirror && el.CodeMirror.getValue() === text);
          },
          [QUERY_EDITOR, keptQuery],
          { timeout: t },
        ),
      );
      const pendingLeft = await page.evaluate(() => sessionStorage.getItem('backplane.playground.pending'));
      check(pendingLeft === null, 'the kept query was not cleared from sessionStorage');
      const banner = await page.isVisible('#bp-session-ended');
      check(!banner, '#bp-session-ended still shows after signing in again');
      sessionEnd = 'ended session kept the query';
    }

    // 8. Nothing but our own server.
    const foreign = requests.filter((r) => {
      if (/^(data|blob|about):/.test(r.url)) return false;
      try {
        return new URL(r.url).origin !== opts.origin;
      } catch {
        return true;
      }
    });
    check(
      foreign.length === 0,
      `requests to another origin than ${opts.origin}:\n${foreign.map((r) => `  ${r.method} ${r.url}${r.failed ? ` (${r.failed})` : ''}`).join('\n')}`,
    );
    const failed = requests.filter((r) => r.failed);
    for (const r of failed) console.error(`request failed: ${r.method} ${r.url} (${r.failed})`);
    check(problems.length === 0, problems.join('\n'));

    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `ok: signed in as ${opts.staff} (${opts.role}); header shows ${identity}; lookup example returned data; ${reply}; ${exported}; ` +
        `${sessionEnd}; ${requests.length} requests, all to ${opts.origin}` +
        `${opts.screenshot ? `; screenshot ${opts.screenshot}` : ''}; ${seconds}s`,
    );
  } finally {
    await browser.close().catch(() => {});
  }
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}

// However Chromium behaves, the script ends: every wait is bounded, and so is the whole.
const watchdog = setTimeout(() => {
  console.error(`FAILED: the run took longer than ${(opts.timeoutMs * 12) / 1000}s`);
  process.exit(1);
}, opts.timeoutMs * 12);
watchdog.unref();

try {
  await run(opts);
  process.exit(0);
} catch (err) {
  console.error(`FAILED: ${err instanceof StepError ? err.message : err.stack || err}`);
  process.exit(1);
}
