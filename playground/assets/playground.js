/*
 * Backplane playground: who is signed in, GraphiQL against /graphql, example
 * queries for support staff, what happens when the session ends, and the
 * step-up: an operation refused for want of a recent second factor (RFC 9470,
 * `INSUFFICIENT_AUTHENTICATION`) offers to sign in again strongly and then
 * runs the query again.
 *
 * Plain ES2019 with no build step. It runs under the page's Content-Security-
 * Policy (`script-src 'self'`): no inline script, no eval, nothing from another
 * host. React, ReactDOM and GraphiQL are the globals of the UMD builds loaded
 * before this file (see playground/README.md).
 */
(function () {
  'use strict';

  /** Where the query and variables wait while the person signs in again. */
  var PENDING_KEY = 'backplane.playground.pending';
  /** Where sign-in comes back to. */
  var PLAYGROUND_PATH = '/playground';
  /** Sign-in when the session answer names none (a signed-in answer does not). */
  var DEFAULT_LOGIN_URL = '/auth/login';
  /** The strong sign-in (`prompt=login`, `max_age`, `acr_values`). */
  var DEFAULT_STEP_UP_URL = '/auth/login?step_up=1';

  /**
   * The example queries (`examples.json`, beside this file: the tests run
   * each as the roles it is for, and generate typed operations from them),
   * by the name of their button; loaded at start.
   */
  var EXAMPLES = {};
  var EXAMPLES_URL = '/playground/assets/examples.json';

  var DEFAULT_QUERY = [
    '# Welcome to the Backplane playground.',
    '#',
    '# Write a query and run it with Ctrl-Enter (Cmd-Enter',
    '# on a Mac) or the run button. The examples above fill',
    '# the editor with ready queries. The docs (the book',
    '# icon, left) list only what your role may read.',
    '#',
    '# Bringing a token of your own? Put',
    '#   {"Authorization": "Bearer …"}',
    '# in the Headers tab below (headers are never saved),',
    '# then re-fetch the schema (the arrows, bottom left).',
    '',
    'query Me {',
    '  viewer {',
    '    subject',
    '    name',
    '    roles',
    '    permissions',
    '  }',
    '}',
    ''
  ].join('\n');

  var state = {
    session: null,
    /** The role's schema, once GraphiQL fetched it (marks the examples). */
    schema: null,
    /** Whether `examples.json` has been fetched (or failed to be). */
    examplesLoaded: false,
    /** Server clock minus ours, in milliseconds (from the `Date` header). */
    clockSkewMs: 0,
    /** The timer that re-renders the header when the second factor lapses. */
    strengthTimer: null,
    /** The editors' latest contents, from GraphiQL's onEdit callbacks. */
    query: null,
    variables: null,
    /** GraphiQL's editor context, once GraphiQL has rendered (see Bridge). */
    editors: null,
    /** GraphiQL's execution context (its `run`), once rendered. */
    execution: null,
    sessionEnded: false
  };

  function byId(id) {
    return document.getElementById(id);
  }

  function showError(message) {
    var el = byId('bp-error');
    el.textContent = message;
    el.hidden = false;
  }

  // ---- Session -----------------------------------------------------------

  function loginUrl() {
    var base = (state.session && state.session.loginUrl) || DEFAULT_LOGIN_URL;
    return base + '?return_to=' + encodeURIComponent(PLAYGROUND_PATH);
  }

  function loadSession() {
    return fetch('/auth/session', {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' }
    }).then(function (res) {
      if (!res.ok) {
        throw new Error('/auth/session answered HTTP ' + res.status);
      }
      var serverNow = Date.parse(res.headers.get('Date') || '');
      if (!isNaN(serverNow)) {
        state.clockSkewMs = serverNow - Date.now();
      }
      return res.json();
    });
  }

  function expiresAtMs() {
    var at = state.session && state.session.expiresAt;
    var ms = at ? Date.parse(at) : NaN;
    return isNaN(ms) ? null : ms;
  }

  /** Whether the session's end has passed, by the server's clock. */
  function sessionOver() {
    var end = expiresAtMs();
    return state.sessionEnded || (end !== null && Date.now() + state.clockSkewMs >= end);
  }

  function showSessionEnded() {
    state.sessionEnded = true;
    byId('bp-session-ended').hidden = false;
    byId('bp-identity').setAttribute('data-state', 'ended');
  }

  /**
   * How long to wait until `atMs` has passed by the server's clock (and half
   * a second more). setTimeout takes at most 2^31-1 ms: a later time is
   * checked again then.
   */
  function delayUntil(atMs) {
    var wait = atMs - (Date.now() + state.clockSkewMs);
    return Math.min(Math.max(wait, 0) + 500, 2147483647);
  }

  /** Shows the banner when the session's time is up, even before a request fails. */
  function watchExpiry() {
    var end = expiresAtMs();
    if (end === null) {
      return;
    }
    setTimeout(function () {
      if (sessionOver()) {
        showSessionEnded();
      } else {
        watchExpiry();
      }
    }, delayUntil(end));
  }

  /**
   * Turns the header back to "no second factor" (with the way to verify)
   * when the second factor's time is up, without a reload: asks the server
   * for the session again then, and re-renders what it says.
   */
  function watchStrength() {
    var session = state.session;
    var until =
      session && session.strongAuthentication === true && session.strongUntil
        ? Date.parse(session.strongUntil)
        : NaN;
    clearTimeout(state.strengthTimer);
    if (isNaN(until)) {
      return;
    }
    state.strengthTimer = setTimeout(function () {
      if (Date.now() + state.clockSkewMs < until) {
        watchStrength();
        return;
      }
      loadSession()
        .then(function (fresh) {
          if (!fresh || fresh.signedIn !== true) {
            showSessionEnded();
            return;
          }
          state.session = fresh;
          renderStrength(fresh);
          watchStrength();
        })
        .catch(function () {
          // Unreachable now: the next request says what holds.
        });
    }, delayUntil(until));
  }

  /** Keeps the query and variables (never the headers: they may hold a token) and signs in again. */
  function signInAgain() {
    keepAndGo(loginUrl(), false);
  }

  /**
   * Keeps the query, signs in again with a second factor, and has the query
   * run again once back (`rerun`).
   */
  function stepUp(rerun) {
    var base = (state.session && state.session.stepUpUrl) || DEFAULT_STEP_UP_URL;
    keepAndGo(base + '&return_to=' + encodeURIComponent(PLAYGROUND_PATH), rerun);
  }

  function keepAndGo(url, rerun) {
    var pending = { query: currentQuery(), variables: currentVariables(), rerun: rerun === true };
    try {
      sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
    } catch (e) {
      // Storage full or disabled: sign in all the same.
    }
    window.location.assign(url);
  }

  /** Shows why the operation was refused, and the way to verify. */
  function showStepUp(error) {
    var permission = error && error.extensions && error.extensions.permission;
    byId('bp-step-up-text').textContent =
      'This query uses ' + (permission || 'a right') +
      ', which needs a recent sign-in with a second factor.';
    byId('bp-step-up').hidden = false;
  }

  /** The step-up refusal among a response's errors, if it is one. */
  function stepUpError(body) {
    var errors = (body && body.errors) || [];
    for (var i = 0; i < errors.length; i += 1) {
      if (errors[i] && errors[i].extensions && errors[i].extensions.code === 'INSUFFICIENT_AUTHENTICATION') {
        return errors[i];
      }
    }
    return null;
  }

  /**
   * Runs the kept query once GraphiQL shows it: after a step-up the person
   * lands back here and sees the answer they asked for.
   */
  function rerunWhenReady(query) {
    var tries = 0;
    function attempt() {
      tries += 1;
      var editors = state.editors;
      var ready =
        state.execution && typeof state.execution.run === 'function' &&
        editors && editors.queryEditor && editors.queryEditor.getValue() === query;
      if (ready) {
        // GraphiQL learns the operation's name from an edit 100 ms later.
        setTimeout(function () {
          state.execution.run();
        }, 250);
        return;
      }
      if (tries < 100) {
        setTimeout(attempt, 100);
      }
    }
    attempt();
  }

  /** The query kept before the last sign-in, once: it is removed as it is read. */
  function takePending() {
    var raw = null;
    try {
      raw = sessionStorage.getItem(PENDING_KEY);
      sessionStorage.removeItem(PENDING_KEY);
    } catch (e) {
      return null;
    }
    if (!raw) {
      return null;
    }
    try {
      var pending = JSON.parse(raw);
      if (pending && typeof pending.query === 'string') {
        return {
          query: pending.query,
          variables: typeof pending.variables === 'string' ? pending.variables : null,
          rerun: pending.rerun === true
        };
      }
    } catch (e) {
      // A malformed entry is dropped.
    }
    return null;
  }

  // ---- Header ------------------------------------------------------------

  function renderIdentity(session) {
    var header = byId('bp-identity');
    byId('bp-user-name').textContent = session.name || session.subject || 'Signed in';
    byId('bp-user-name').title = session.subject ? 'Subject: ' + session.subject : '';
    var email = byId('bp-user-email');
    if (session.email) {
      email.textContent = session.email;
      email.hidden = false;
    }
    var roles = byId('bp-roles');
    roles.textContent = '';
    (session.roles || []).forEach(function (role) {
      var badge = document.createElement('span');
      badge.className = 'bp-role';
      badge.setAttribute('data-role', role);
      badge.textContent = role;
      roles.appendChild(badge);
    });
    byId('bp-dev-hint').hidden = session.mode !== 'dev';
    var end = expiresAtMs();
    if (end !== null) {
      var expires = byId('bp-expires');
      var at = new Date(end);
      var sameDay = at.toDateString() === new Date().toDateString();
      expires.textContent =
        'until ' +
        (sameDay ? '' : at.toLocaleDateString([], { month: 'short', day: 'numeric' }) + ' ') +
        at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      expires.title = 'The session ends at ' + at.toString();
      expires.hidden = false;
    }
    renderStrength(session);
    var signOut = byId('bp-sign-out');
    signOut.href = session.logoutUrl || '/auth/logout';
    signOut.hidden = false;
    header.querySelector('.bp-examples').hidden = false;
    byId('bp-export').hidden = false;
    header.setAttribute('data-state', 'signed-in');
  }

  /**
   * Whether the sign-in is strong (and until when), or which rights wait for
   * a second factor, with the way to give one.
   */
  function renderStrength(session) {
    var strength = byId('bp-strength');
    var now = byId('bp-step-up-now');
    var pending = session.stepUpRequired || [];
    var until = session.strongUntil ? Date.parse(session.strongUntil) : NaN;
    if (session.strongAuthentication === true && !isNaN(until)) {
      var at = new Date(until);
      strength.textContent =
        'second factor until ' +
        at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
      strength.title = 'Signed in with a second factor; cost data, bulk changes and the audit log are open until ' + at.toString();
      strength.setAttribute('data-strong', 'true');
      strength.hidden = false;
      now.hidden = true;
    } else if (pending.length > 0) {
      strength.textContent = 'no second factor';
      strength.title = 'Sign in again with a second factor to use: ' + pending.join(', ');
      strength.setAttribute('data-strong', 'false');
      strength.hidden = false;
      now.hidden = false;
    } else {
      strength.hidden = true;
      now.hidden = true;
    }
  }

  // ---- Editors -----------------------------------------------------------

  function currentQuery() {
    var editors = state.editors;
    if (editors && editors.queryEditor) {
      return editors.queryEditor.getValue();
    }
    return state.query || '';
  }

  function currentVariables() {
    var editors = state.editors;
    if (editors && editors.variableEditor) {
      return editors.variableEditor.getValue();
    }
    return state.variables || '';
  }

  // ---- Export ------------------------------------------------------------

  /**
   * Exports every row of the editor's query (one root list) as CSV: POSTs it
   * to /export with the session cookie and saves the answer as a file. A
   * refusal (a hidden field, a nested list, no list at all) shows its message.
   */
  function exportCsv() {
    var button = byId('bp-export');
    var variables = null;
    var text = currentVariables().trim();
    if (text !== '') {
      try {
        variables = JSON.parse(text);
      } catch (e) {
        showError('Export: the variables are not JSON.');
        return Promise.resolve();
      }
    }
    button.disabled = true;
    button.textContent = 'Exporting…';
    byId('bp-error').hidden = true;
    return fetch('/export', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'text/csv' },
      body: JSON.stringify({ query: currentQuery(), variables: variables })
    })
      .then(function (res) {
        if (!res.ok) {
          return res.text().then(function (body) {
            var message = 'HTTP ' + res.status;
            var parsed = null;
            try {
              parsed = JSON.parse(body);
              if (parsed && parsed.errors && parsed.errors[0]) {
                message = parsed.errors[0].message;
              }
            } catch (e) {
              // not JSON: the status says it
            }
            if (res.status === 401) {
              var refusal = stepUpError(parsed);
              if (refusal) {
                showStepUp(refusal);
              } else {
                showSessionEnded();
              }
            }
            showError('Export refused: ' + message);
          });
        }
        var disposition = res.headers.get('Content-Disposition') || '';
        var named = /filename="([^"]+)"/.exec(disposition);
        return res.blob().then(function (blob) {
          var link = document.createElement('a');
          link.href = URL.createObjectURL(blob);
          link.download = named ? named[1] : 'export.csv';
          document.body.appendChild(link);
          link.click();
          link.remove();
          setTimeout(function () {
            URL.revokeObjectURL(link.href);
          }, 10000);
        });
      })
      .catch(function () {
        showError('Export failed: the transfer was cut short (the file would be incomplete).');
      })
      .then(function () {
        button.disabled = false;
        button.textContent = 'Export CSV';
      });
  }

  function isReplaceable(text) {
    var t = text.trim();
    if (t === '' || t === DEFAULT_QUERY.trim()) {
      return true;
    }
    return Object.keys(EXAMPLES).some(function (name) {
      return EXAMPLES[name].query.trim() === t;
    });
  }

  /**
   * Puts an example in the editors: in place of an empty or untouched editor,
   * else in a new tab, so that nobody's work is overwritten.
   */
  function openExample(name) {
    var example = EXAMPLES[name];
    var editors = state.editors;
    if (!example || !editors || !editors.queryEditor) {
      return;
    }
    if (!isReplaceable(editors.queryEditor.getValue())) {
      // addTab updates React state; flushSync applies it (and the new tab's
      // editor contents) now, before the example is written over them.
      ReactDOM.flushSync(function () {
        editors.addTab();
      });
      editors = state.editors;
    }
    editors.queryEditor.setValue(example.query);
    if (editors.variableEditor) {
      editors.variableEditor.setValue(JSON.stringify(example.variables, null, 2));
    }
    // GraphiQL learns the operation's name from an edit 100 ms later; a run
    // before that would send the previous tab's name.
    var named = /^\s*(?:query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)/m.exec(example.query);
    if (named && typeof editors.setOperationName === 'function') {
      editors.setOperationName(named[1]);
    }
    editors.queryEditor.focus();
  }

  /**
   * Greys out the examples that the schema just fetched cannot run: each role
   * sees its own schema, and an auditor has no organizations to look up.
   */
  function markExamples(schema) {
    if (schema) {
      state.schema = schema;
    }
    schema = state.schema;
    if (!schema || !state.examplesLoaded) {
      return; // marked once both the schema and the examples are in
    }
    var gql = GraphiQL.GraphQL;
    Array.prototype.forEach.call(document.querySelectorAll('[data-example]'), function (button) {
      var example = EXAMPLES[button.getAttribute('data-example')];
      var available = !!example;
      if (example && schema && gql && gql.validate && gql.parse) {
        try {
          available = gql.validate(schema, gql.parse(example.query)).length === 0;
        } catch (e) {
          available = true; // let the server say what is wrong
        }
      }
      button.disabled = !available;
      button.setAttribute('data-available', available ? 'true' : 'false');
      button.title = available ? '' : 'Not available to your role: it reads fields your role does not see';
    });
  }

  /** Renders nothing; hands GraphiQL's editor context to the code above. */
  function Bridge() {
    var editors = GraphiQL.React.useEditorContext({ nonNull: true });
    state.editors = editors;
    state.execution = GraphiQL.React.useExecutionContext({ nonNull: true });
    return null;
  }

  // ---- Storage: GraphiQL keeps tabs and history, never headers ------------

  /**
   * GraphiQL's own setting keeps headers out of its saved tabs, but its history
   * saves each run's headers. This storage drops `headers` from whatever GraphiQL
   * writes (and from what an older page left), so a pasted token never lands in
   * localStorage.
   */
  function headerlessStorage() {
    var NS = 'graphiql:';

    function strip(key, value) {
      if (key === NS + 'headers') {
        return null;
      }
      if (!value || value.charAt(0) !== '{') {
        return value;
      }
      try {
        var parsed = JSON.parse(value);
        var changed = false;
        Object.keys(parsed).forEach(function (k) {
          if (Array.isArray(parsed[k])) {
            parsed[k].forEach(function (item) {
              if (item && typeof item === 'object' && 'headers' in item) {
                delete item.headers;
                changed = true;
              }
            });
          }
        });
        return changed ? JSON.stringify(parsed) : value;
      } catch (e) {
        return value;
      }
    }

    var ls;
    try {
      ls = window.localStorage;
      var stale = [];
      for (var i = 0; i < ls.length; i += 1) {
        var key = ls.key(i);
        if (key && key.indexOf(NS) === 0) {
          stale.push(key);
        }
      }
      stale.forEach(function (key) {
        var value = ls.getItem(key);
        var clean = strip(key, value);
        if (clean === null) {
          ls.removeItem(key);
        } else if (clean !== value) {
          ls.setItem(key, clean);
        }
      });
    } catch (e) {
      return null; // no localStorage: GraphiQL then keeps nothing
    }

    return {
      getItem: function (key) {
        return ls.getItem(key);
      },
      setItem: function (key, value) {
        var clean = strip(key, value);
        if (clean === null) {
          ls.removeItem(key);
        } else {
          ls.setItem(key, clean);
        }
      },
      removeItem: function (key) {
        ls.removeItem(key);
      },
      clear: function () {
        var keys = [];
        for (var i = 0; i < ls.length; i += 1) {
          var key = ls.key(i);
          if (key && key.indexOf(NS) === 0) {
            keys.push(key);
          }
        }
        keys.forEach(function (key) {
          ls.removeItem(key);
        });
      },
      get length() {
        var n = 0;
        for (var i = 0; i < ls.length; i += 1) {
          var key = ls.key(i);
          if (key && key.indexOf(NS) === 0) {
            n += 1;
          }
        }
        return n;
      }
    };
  }

  // ---- Fetcher -----------------------------------------------------------

  function sessionEndedResult() {
    return {
      errors: [
        {
          message: 'Your session has ended. Sign in again — your query is kept.',
          extensions: { code: 'UNAUTHENTICATED' }
        }
      ]
    };
  }

  /**
   * POSTs an operation to /graphql with the session cookie and whatever the
   * Headers tab holds. Introspection comes through here too, so the docs show
   * the schema of the caller's own role (or of the token in the Headers tab).
   */
  function fetcher(params, opts) {
    var typed = (opts && opts.headers) || {};
    var headers = new Headers();
    var ownToken = false;
    Object.keys(typed).forEach(function (name) {
      var value = typed[name];
      if (value === undefined || value === null) {
        return;
      }
      headers.set(name, String(value));
      if (name.toLowerCase() === 'authorization') {
        ownToken = true;
      }
    });
    headers.set('Content-Type', 'application/json');
    headers.set('Accept', 'application/graphql-response+json, application/json');

    // With a token of their own, the cookie's session does not matter.
    if (!ownToken && sessionOver()) {
      showSessionEnded();
      return Promise.resolve(sessionEndedResult());
    }

    return fetch('/graphql', {
      method: 'POST',
      credentials: 'same-origin',
      headers: headers,
      body: JSON.stringify(params)
    }).then(function (res) {
      return res.text().then(function (text) {
        var body = null;
        try {
          body = JSON.parse(text);
        } catch (e) {
          body = null;
        }
        // A 401 for a typed token is about that token: the response says so.
        // A step-up refusal is not the session's end: verifying again is.
        if (res.status === 401 && !ownToken) {
          var refusal = stepUpError(body);
          if (refusal) {
            showStepUp(refusal);
          } else {
            showSessionEnded();
          }
        }
        if (body !== null && typeof body === 'object') {
          return body;
        }
        return {
          errors: [
            {
              message:
                'HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '') +
                ': the server did not answer with JSON',
              extensions: { status: res.status, body: text.slice(0, 1000) }
            }
          ]
        };
      });
    });
  }

  // ---- Start -------------------------------------------------------------

  function renderGraphiQL(pending) {
    var container = byId('graphiql');
    container.textContent = '';
    var props = {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      storage: headerlessStorage(),
      onEditQuery: function (value) {
        state.query = value;
      },
      onEditVariables: function (value) {
        state.variables = value;
      },
      onSchemaChange: markExamples
    };
    if (pending) {
      // Opens the kept query in a tab of its own (or the tab that has it).
      props.query = pending.query;
      if (pending.variables !== null) {
        props.variables = pending.variables;
      }
    }
    var logo = React.createElement(GraphiQL.Logo, null, React.createElement(Bridge));
    ReactDOM.createRoot(container).render(React.createElement(GraphiQL, props, logo));
  }

  /** Fetches the examples, then marks which the role's schema can run. */
  function loadExamples() {
    fetch(EXAMPLES_URL, { credentials: 'same-origin' })
      .then(function (response) {
        return response.ok ? response.json() : {};
      })
      .then(function (examples) {
        EXAMPLES = examples || {};
      })
      .catch(function () {
        EXAMPLES = {};
      })
      .then(function () {
        state.examplesLoaded = true;
        markExamples(null);
      });
  }

  function start() {
    byId('bp-sign-in-again').addEventListener('click', signInAgain);
    byId('bp-verify').addEventListener('click', function () {
      stepUp(true);
    });
    byId('bp-step-up-now').addEventListener('click', function () {
      stepUp(false);
    });
    byId('bp-export').addEventListener('click', exportCsv);
    Array.prototype.forEach.call(document.querySelectorAll('[data-example]'), function (button) {
      button.addEventListener('click', function () {
        openExample(button.getAttribute('data-example'));
      });
    });

    loadExamples();
    loadSession()
      .then(function (session) {
        state.session = session;
        if (!session || session.signedIn !== true) {
          window.location.replace(loginUrl());
          return;
        }
        renderIdentity(session);
        watchExpiry();
        watchStrength();
        var pending = takePending();
        renderGraphiQL(pending);
        if (pending && pending.rerun) {
          rerunWhenReady(pending.query);
        }
      })
      .catch(function (err) {
        showError('Could not ask the server who is signed in (' + err.message + '). Reload the page to try again.');
        byId('graphiql').textContent = '';
      });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
