// The core flow in a real browser: what a browser sends (cookies, Origin, form encoding)
// is what lakegate must accept. Needs LAKEGATE_URL (a server with development sign-in) and
// LAKEGATE_TEST_TABLE (a table in its catalog); scripts/test provides both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const BASE = process.env.LAKEGATE_URL;
const TABLE = process.env.LAKEGATE_TEST_TABLE;
// moto itself, for queueing the rows its next Athena query returns.
const MOTO = process.env.LAKEGATE_TEST_AWS_ENDPOINT;
// A second lakegate, whose people sign in through the test OpenID Connect provider.
const OIDC_BASE = process.env.LAKEGATE_OIDC_URL;
assert.ok(BASE && TABLE && MOTO && OIDC_BASE,
  'LAKEGATE_URL, LAKEGATE_OIDC_URL, LAKEGATE_TEST_TABLE and LAKEGATE_TEST_AWS_ENDPOINT are not set: run scripts/test');

/** The next Athena query moto runs answers these rows (the first is the header, as in Athena). */
async function queueResults(rows) {
  const res = await fetch(`${MOTO}/moto-api/static/athena/query-results`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      account_id: '123456789012',
      region: 'us-east-1',
      results: [{
        rows: rows.map((r) => ({ Data: r.map((v) => ({ VarCharValue: v })) })),
        column_info: rows[0].map((name) => ({ Name: name, Type: 'varchar', Nullable: 'UNKNOWN' })),
      }],
    }),
  });
  assert.ok(res.ok, `moto did not take the canned results: ${res.status}`);
}

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});
after(async () => { await browser?.close(); });

async function signIn(email, groups) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  assert.match(page.url(), /\/auth\/dev/, 'anonymous visitors are sent to sign-in');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=groups]', groups);
  await page.click('form.stack button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  assert.equal(await page.textContent('.flash'), `Signed in as ${email}.`);
  return page;
}

async function statusOf(page, url) {
  await page.goto(url);
  return (await page.textContent('#status')).trim();
}

async function waitForStatus(page, url, wanted, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const s = await statusOf(page, url);
    if (s === wanted) return;
    assert.ok(Date.now() < deadline, `still ${s}, not ${wanted}, after ${seconds}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('request, approve, credentials, query console and revoke in a browser', async () => {
  const alice = await signIn('alice@example.com', 'analysts');
  await alice.click('text=Request access');
  await alice.fill('#resources', `${TABLE}: nope`);
  await alice.fill('#duration', '30m');
  await alice.fill('#reason', 'Checking April orders in the browser test');
  await alice.click('form.stack button[type=submit]');
  assert.match(await alice.textContent('#form-error'), /has no column `nope`/);
  assert.equal(await alice.inputValue('#reason'), 'Checking April orders in the browser test', 'what was typed is kept');

  await alice.fill('#resources', TABLE);
  await alice.click('form.stack button[type=submit]');
  await alice.waitForURL(/\/requests\/[0-9a-f-]{36}$/);
  const url = alice.url();
  assert.equal((await alice.textContent('#status')).trim(), 'pending');
  assert.equal(await alice.locator('#approve').count(), 0, 'the requester cannot approve');
  // Alice keeps the page open: it must turn active by itself, in this same document.
  await alice.evaluate(() => { window.sameDocument = true; });

  const bob = await signIn('bob@example.com', 'data-owners');
  await bob.click('#pending-requests >> text=Review');
  assert.equal(bob.url(), url);
  await bob.fill('#approve-comment', 'fine for April');
  await bob.click('#approve');
  await bob.waitForURL(url);
  assert.match(await bob.textContent('.flash'), /Approved/);

  await alice.waitForFunction(() => document.getElementById('status').textContent.trim() === 'active',
    null, { timeout: 30000 });
  assert.equal(await alice.evaluate(() => window.sameDocument), true, 'the page turned active without a reload');
  // Times in the viewer's zone, UTC on hover, and a countdown to the expiry.
  assert.match(await alice.getAttribute('#expires-at time', 'title'), / UTC$/);
  await alice.waitForFunction(() => /left\)$/.test(document.getElementById('countdown').textContent));
  await alice.click('#get-credentials');
  const credentialsUrl = (await alice.textContent('#credentials-url')).trim();
  const token = (await alice.textContent('#credentials-token')).trim();
  assert.equal(credentialsUrl, `${BASE}/credentials/${url.split('/').pop()}`);
  // The copy buttons put exactly the token and the profile on the clipboard.
  await alice.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  // The button says so once the clipboard has taken the text (an asynchronous write).
  const copied = (label) => alice.waitForFunction(
    (l) => document.querySelector(`button[aria-label="${l}"]`)?.textContent === 'Copied', label, { timeout: 5000 });
  await alice.click('button[aria-label="Copy the token"]');
  await copied('Copy the token');
  assert.equal(await alice.evaluate(() => navigator.clipboard.readText()), token);
  await alice.click('button[aria-label="Copy the profile"]');
  await copied('Copy the profile');
  assert.match(await alice.evaluate(() => navigator.clipboard.readText()),
    new RegExp(`^\\[profile lakegate-[0-9a-f]+\\]\nregion = .+\ncredential_process = lakegate credentials --url ${credentialsUrl}$`));

  const ok = await fetch(credentialsUrl, { headers: { Authorization: token } });
  assert.equal(ok.status, 200);
  const creds = await ok.json();
  assert.match(creds.AccessKeyId, /^ASIA/);
  assert.match(creds.Expiration, /Z$/);

  // The query console: a refused statement says why and keeps what was typed; an accepted one
  // runs as the grant's session and shows its rows, with a CSV download.
  await alice.goto(url);
  await alice.click('#open-console');
  await alice.fill('#sql', `DELETE FROM ${TABLE}`);
  await alice.click('#run-query');
  assert.match(await alice.textContent('#query-error'), /not allowed: the console only reads/);
  assert.equal(await alice.inputValue('#sql'), `DELETE FROM ${TABLE}`);
  await queueResults([['order_id'], ['1001'], ['1002']]);
  await alice.fill('#sql', `SELECT order_id FROM ${TABLE} LIMIT 2`);
  await alice.click('#run-query');
  assert.equal((await alice.textContent('#query-state')).trim(), 'SUCCEEDED');
  assert.deepEqual(await alice.locator('#query-results tbody td').allTextContents(), ['1001', '1002']);
  const [download] = await Promise.all([alice.waitForEvent('download'), alice.click('#query-csv')]);
  assert.equal(await readFile(await download.path(), 'utf8'), 'order_id\r\n1001\r\n1002\r\n');

  await alice.goto(url);
  await alice.click('#revoke');
  await alice.waitForURL(url);
  const refused = await fetch(credentialsUrl, { headers: { Authorization: token } });
  assert.equal(refused.status, 403);
  await waitForStatus(alice, url, 'revoked');
  assert.match(await alice.textContent('#timeline'), /access ended/);
});

test('the catalog picker fills the form and shows what the policy asks, before submitting', async () => {
  const { mkdir } = await import('node:fs/promises');
  const dir = new URL('../../target/browser-screenshots/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const shot = (page, name) => page.screenshot({ path: new URL(`picker-${name}.png`, dir).pathname, fullPage: true });
  const alice = await signIn('alice@example.com', 'analysts');
  await alice.goto(`${BASE}/requests/new`);
  await alice.waitForSelector('#picker:not([hidden]) [data-table="sales.orders"]');
  await shot(alice, '1-tables');

  // Two tables: some columns of one, every column of the other.
  await alice.fill('#picker-search', 'sales');
  await alice.waitForFunction(() => /of 2 requestable tables/.test(document.getElementById('picker-status').textContent));
  await alice.click('[data-table="sales.orders"] summary');
  await alice.check('[data-table="sales.orders"] input[data-column="order_id"]');
  await alice.check('[data-table="sales.orders"] input[data-column="amount"]');
  await alice.click('[data-table="sales.customers"] summary');
  await alice.check('[data-table="sales.customers"] input[data-all]');
  assert.equal(await alice.inputValue('#resources'), 'sales.orders: order_id, amount\nsales.customers');
  await alice.waitForSelector('#preview');
  assert.match(await alice.textContent('#preview'), /1 approval from data-owners/);
  await shot(alice, '2-picked');

  // A sensitive column is marked where it is picked, and the preview says what it needs.
  await alice.fill('#picker-search', 'employees');
  await alice.click('[data-table="hr.employees"] summary');
  assert.match(await alice.textContent('[data-table="hr.employees"] li.sensitive'), /salary|national_id/);
  await alice.check('[data-table="hr.employees"] input[data-column="salary"]');
  await alice.waitForFunction(() => /hr\.employees\.salary/.test(document.getElementById('preview')?.textContent ?? ''));
  assert.match(await alice.textContent('#preview'), /2 approvals from hr-owners/);
  await shot(alice, '3-sensitive');
  await alice.uncheck('[data-table="hr.employees"] input[data-column="salary"]');
  assert.equal(await alice.inputValue('#resources'), 'sales.orders: order_id, amount\nsales.customers');

  // Lines typed by hand stay; the picker follows them.
  await alice.fill('#resources', 'sales.orders: order_id, amount\nsales.customers: customer_id, country');
  await alice.fill('#picker-search', 'customers');
  await alice.click('[data-table="sales.customers"] summary');
  assert.equal(await alice.isChecked('[data-table="sales.customers"] input[data-column="country"]'), true);
  assert.equal(await alice.isChecked('[data-table="sales.customers"] input[data-column="email"]'), false);

  await alice.fill('#duration', '30m');
  await alice.fill('#reason', 'Picked in the catalog picker by the browser test');
  await alice.click('form.stack button[type=submit]');
  await alice.waitForURL(/\/requests\/[0-9a-f-]{36}$/);
  const url = alice.url();
  const tables = await alice.textContent('main');
  assert.match(tables, /sales\.orders/);
  assert.match(tables, /sales\.customers/);
  await shot(alice, '4-submitted');
  await alice.evaluate(() => { window.sameDocument = true; });

  // Bob approves in his own browser; Alice's page turns active by itself.
  const bob = await signIn('bob@example.com', 'data-owners');
  await bob.goto(url);
  await bob.click('#approve');
  await bob.waitForURL(url);
  await alice.waitForFunction(() => document.getElementById('status').textContent.trim() === 'active',
    null, { timeout: 30000 });
  assert.equal(await alice.evaluate(() => window.sameDocument), true, 'the page turned active without a reload');
  await shot(alice, '5-active');
  await alice.click('#revoke');
  await alice.waitForURL(url);
});

/** Signs `login` in to the OpenID Connect lakegate through the provider's own login and consent pages. */
async function signInAtProvider(login, shot) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${OIDC_BASE}/`);
  await page.waitForURL(/\/interaction\//);
  assert.ok(!page.url().startsWith(OIDC_BASE), `lakegate sent the visitor to the provider, not ${page.url()}`);
  await shot?.(page, 'provider-login');
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');
  await page.waitForURL(/\/interaction\/.+/);
  await page.click('button[type=submit]'); // consent
  await page.waitForURL(`${OIDC_BASE}/`);
  return page;
}

test('signed in through the identity provider: asked with the picker, approved in a second browser', async () => {
  const { mkdir } = await import('node:fs/promises');
  const dir = new URL('../../target/browser-screenshots/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const shot = (page, name) => page.screenshot({ path: new URL(`oidc-${name}.png`, dir).pathname, fullPage: true });

  const alice = await signInAtProvider('alice', shot);
  assert.match(await alice.textContent('header'), /Alice Analyst/);
  assert.match(await alice.textContent('header'), /analysts/);
  await shot(alice, 'signed-in');
  await alice.click('text=Request access');
  await alice.waitForSelector('#picker:not([hidden]) [data-table="sales.customers"]');
  await alice.click('[data-table="sales.customers"] summary');
  await alice.check('[data-table="sales.customers"] input[data-column="customer_id"]');
  await alice.check('[data-table="sales.customers"] input[data-column="country"]');
  await alice.click('[data-table="sales.orders"] summary');
  await alice.check('[data-table="sales.orders"] input[data-all]');
  assert.equal(await alice.inputValue('#resources'), 'sales.customers: customer_id, country\nsales.orders');
  await alice.fill('#duration', '30m');
  await alice.fill('#reason', 'Country mix of orders, signed in through the provider');
  await shot(alice, 'request-form');
  await alice.click('form.stack button[type=submit]');
  await alice.waitForURL(/\/requests\/[0-9a-f-]{36}$/);
  const url = alice.url();
  assert.equal((await alice.textContent('#status')).trim(), 'pending');
  await alice.evaluate(() => { window.sameDocument = true; });

  // Bob, in his own browser and through the provider too, approves from his queue.
  const bob = await signInAtProvider('bob');
  await bob.waitForSelector('#pending-requests');
  await shot(bob, 'approver-queue');
  await bob.goto(url);
  await bob.fill('#approve-comment', 'ok for the country mix');
  await bob.click('#approve');
  await bob.waitForURL(url);
  await alice.waitForFunction(() => document.getElementById('status').textContent.trim() === 'active',
    null, { timeout: 30000 });
  assert.equal(await alice.evaluate(() => window.sameDocument), true, 'the page turned active without a reload');
  await shot(alice, 'active');
  await alice.click('#revoke');
  await alice.waitForURL(url);
});

test('forged forms do not act for the signed-in person', async () => {
  const carol = await signIn('carol@example.com', 'analysts');
  const form = (action) => `<form method="post" action="${action}">
      <input name="resources" value="${TABLE}"><input name="duration" value="30m">
      <input name="reason" value="cross-site request forgery"><button>go</button></form>`;

  // 1. Injected into a lakegate page (same origin), but without the session's CSRF token.
  await carol.setContent(form(`${BASE}/requests`));
  await Promise.all([carol.waitForNavigation(), carol.click('button')]);
  assert.match(await carol.textContent('#error-message'), /no security token/);

  // 2. Posted from another site: the browser sends `Origin: null` and, SameSite=Lax, no cookie.
  await carol.goto(`data:text/html,${encodeURIComponent(form(`${BASE}/requests`))}`);
  await Promise.all([carol.waitForNavigation(), carol.click('button')]);
  assert.doesNotMatch(carol.url(), /\/requests\/[0-9a-f-]{36}$/);

  // Neither created anything.
  await carol.goto(`${BASE}/`);
  assert.match(await carol.textContent('main'), /You have no requests yet/);
});

// The policy the server runs with (tests/browser/policy.toml): hr tables need two hr-owners;
// salary and national_id are sensitive; the on-call group may break the glass for 30 minutes.
test('two approvals, the reasons shown, and break-glass with its review', async () => {
  const alice = await signIn('alice@example.com', 'analysts');
  await alice.goto(`${BASE}/requests/new`);
  await alice.fill('#resources', 'hr.employees');
  await alice.fill('#duration', '30m');
  await alice.fill('#reason', 'Headcount report for the board, needs salaries');
  assert.equal(await alice.locator('#break-glass').count(), 0, 'break-glass is offered only to its groups');
  await alice.click('form.stack button[type=submit]');
  await alice.waitForURL(/\/requests\/[0-9a-f-]{36}$/);
  const url = alice.url();
  assert.match(await alice.textContent('#policy-rules'), /hr\.employees\s*rule hr/);
  assert.match(await alice.textContent('#approvals-missing'), /2 more approvals from hr-owners \(rule hr\)/);
  assert.match(await alice.textContent('#sensitive-columns'), /hr\.employees\.salary/);

  // data-owners approve sales, not hr: they do not even see it.
  const bob = await signIn('bob@example.com', 'data-owners');
  const forbidden = await bob.goto(url);
  assert.equal(forbidden.status(), 403);

  const h1 = await signIn('harriet@example.com', 'hr-owners');
  await h1.click('#pending-requests >> text=Review');
  await h1.click('#approve');
  await h1.waitForURL(url);
  assert.match(await h1.textContent('.flash'), /Still needed: 1 more approval from hr-owners/);
  assert.equal((await h1.textContent('#status')).trim(), 'pending');
  assert.equal(await h1.locator('#approve').count(), 0, 'the same person does not approve twice');

  const h2 = await signIn('henry@example.com', 'hr-owners');
  await h2.goto(url);
  await h2.click('#approve');
  await h2.waitForURL(url);
  assert.match(await h2.textContent('.flash'), /Approved/);
  await waitForStatus(alice, url, 'active');
  await alice.click('#revoke');
  await waitForStatus(alice, url, 'revoked');

  // Break-glass: at once, flagged, and reviewed afterwards by an approver of the table.
  const olga = await signIn('olga@example.com', 'oncall');
  await olga.goto(`${BASE}/requests/new`);
  await olga.fill('#resources', 'hr.employees: name, department');
  await olga.fill('#duration', '15m');
  await olga.fill('#reason', 'Incident 4711: payroll export is failing');
  await olga.check('#break-glass');
  await olga.click('form.stack button[type=submit]');
  await olga.waitForURL(/\/requests\/[0-9a-f-]{36}$/);
  const bgUrl = olga.url();
  assert.match(await olga.textContent('.flash'), /Break-glass access is being set up now/);
  assert.equal((await olga.textContent('#break-glass-flag')).trim(), 'break-glass');
  await waitForStatus(olga, bgUrl, 'active');
  assert.equal(await olga.locator('#review').count(), 0, 'nobody reviews their own break-glass');

  await h1.goto(`${BASE}/`);
  await h1.click('#review-queue a.button');
  await h1.waitForURL(bgUrl);
  await h1.fill('#review-comment', 'checked with the incident channel');
  await h1.click('#review');
  await h1.waitForURL(bgUrl);
  assert.equal(await h1.locator('#needs-review').count(), 0);
  assert.match(await h1.textContent('#break-glass-note'), /reviewed by harriet@example.com/);
  await olga.goto(bgUrl);
  await olga.click('#revoke');
  await waitForStatus(olga, bgUrl, 'revoked');
});

/** Pages open in a context that lets the test inject axe-core (lakegate's CSP would refuse it). */
async function signInAudited(email, groups, viewport) {
  const context = await browser.newContext({ bypassCSP: true, ...(viewport ? { viewport } : {}) });
  const page = await context.newPage();
  await page.goto(`${BASE}/auth/dev`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=groups]', groups);
  await page.click('form.stack button[type=submit]');
  await page.waitForURL(`${BASE}/`);
  return page;
}

const AXE = await readFile(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const SCREENSHOTS = new URL('../../target/browser-screenshots/', import.meta.url);

/** axe-core's serious and critical findings on the page as it is now. */
async function seriousViolations(page) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  return result;
}

test('the main pages have no serious accessibility violation, and the header works 360 px wide', async () => {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(SCREENSHOTS, { recursive: true });
  const admin = await signInAudited('sam@example.com', 'security,data-owners');
  const alice = await signInAudited('alice@example.com', 'analysts');
  await alice.goto(`${BASE}/requests/new`);
  await alice.fill('#resources', TABLE);
  await alice.fill('#duration', '30m');
  await alice.fill('#reason', 'Accessibility check of the request page');
  await alice.click('form.stack button[type=submit]');
  await alice.waitForURL(/\/requests\/[0-9a-f-]{36}$/);
  const requestPage = alice.url();

  const pages = [
    [alice, `${BASE}/`, 'dashboard'],
    [alice, `${BASE}/requests/new`, 'new-request'],
    [alice, requestPage, 'request'],
    [alice, `${BASE}/settings/tokens`, 'tokens'],
    [admin, `${BASE}/`, 'approver-dashboard'],
    [admin, `${BASE}/audit`, 'audit'],
  ];
  const found = [];
  for (const [page, url, name] of pages) {
    await page.goto(url);
    for (const v of await seriousViolations(page)) found.push(`${name}: ${v}`);
  }
  assert.deepEqual(found, [], `axe-core found:\n${found.join('\n')}`);
  // Leave no pending request behind for the approvers' queues of other tests.
  await alice.goto(requestPage);
  await alice.click('#cancel');
  await alice.waitForURL(requestPage);

  // 360 px wide (a small phone): the header wraps, and Sign out stays on screen and usable.
  const phone = await signInAudited('alice@example.com', 'analysts', { width: 360, height: 740 });
  await phone.goto(`${BASE}/`);
  await phone.screenshot({ path: new URL('dashboard-360px.png', SCREENSHOTS).pathname, fullPage: true });
  const signOut = phone.locator('header button:has-text("Sign out")');
  const box = await signOut.boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= 360, `Sign out is off screen: ${JSON.stringify(box)}`);
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 360, `the page scrolls sideways at 360 px (${width} px wide)`);
  await signOut.click();
  await phone.waitForURL(/\/auth\/(dev|login)/);
});

test('the same flow with JavaScript off, through the plain forms', async () => {
  const noScript = async (email, groups) => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${BASE}/auth/dev`);
    await page.fill('input[name=email]', email);
    await page.fill('input[name=groups]', groups);
    await page.click('form.stack button[type=submit]');
    await page.waitForURL(`${BASE}/`);
    return page;
  };
  const alice = await noScript('alice@example.com', 'analysts');
  await alice.goto(`${BASE}/requests/new`);
  await alice.fill('#resources', TABLE);
  await alice.fill('#duration', '30m');
  await alice.fill('#reason', 'The same request with JavaScript turned off');
  await alice.click('form.stack button[type=submit]');
  await alice.waitForURL(/\/requests\/[0-9a-f-]{36}$/);
  const url = alice.url();
  const id = url.split('/').pop();
  assert.equal((await alice.textContent('#status')).trim(), 'pending');

  // Bob approves right from his queue's button.
  const bob = await noScript('bob@example.com', 'data-owners');
  await bob.goto(`${BASE}/`);
  await bob.click(`#queued-${id} form[action$="/approve"] button`);
  await bob.waitForURL(url);
  assert.match(await bob.textContent('.flash'), /Approved/);

  // Without the script the page refreshes itself (<noscript> meta refresh) until it is active.
  await alice.goto(url);
  const deadline = Date.now() + 30000;
  for (;;) {
    // The page reloads under us now and then: a read that meets a reload is tried again.
    const status = await alice.textContent('#status').then((t) => t.trim(), () => '');
    if (status === 'active') break;
    assert.ok(Date.now() < deadline, `the page never showed the grant active (still ${status})`);
    await alice.waitForTimeout(500);
  }
  assert.equal(alice.url(), url);
  await alice.click('#get-credentials');
  assert.match((await alice.textContent('#credentials-token')).trim(), /^lgt_/);
  assert.equal(await alice.locator('button.copy').count(), 0, 'no copy buttons without the script');
  await alice.goto(url);
  await alice.click('#revoke');
  await alice.waitForURL(url);
});
