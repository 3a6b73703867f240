// The core flow in a real browser: what a browser sends (cookies, Origin, form encoding)
// is what lakegate must accept. Needs LAKEGATE_URL (a server with development sign-in) and
// LAKEGATE_TEST_TABLE (a table in its catalog); scripts/test provides both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BASE = process.env.LAKEGATE_URL;
const TABLE = process.env.LAKEGATE_TEST_TABLE;
assert.ok(BASE && TABLE, 'LAKEGATE_URL and LAKEGATE_TEST_TABLE are not set: run scripts/test');

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

test('request, approve, credentials and revoke in a browser', async () => {
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

  const bob = await signIn('bob@example.com', 'data-owners');
  await bob.click('#pending-requests >> text=Review');
  assert.equal(bob.url(), url);
  await bob.fill('#approve-comment', 'fine for April');
  await bob.click('#approve');
  await bob.waitForURL(url);
  assert.match(await bob.textContent('.flash'), /Approved/);

  await waitForStatus(alice, url, 'active');
  await alice.click('#get-credentials');
  const credentialsUrl = (await alice.textContent('#credentials-url')).trim();
  const token = (await alice.textContent('#credentials-token')).trim();
  assert.equal(credentialsUrl, `${BASE}/credentials/${url.split('/').pop()}`);

  const ok = await fetch(credentialsUrl, { headers: { Authorization: token } });
  assert.equal(ok.status, 200);
  const creds = await ok.json();
  assert.match(creds.AccessKeyId, /^ASIA/);
  assert.match(creds.Expiration, /Z$/);

  await alice.goto(url);
  await alice.click('#revoke');
  await alice.waitForURL(url);
  const refused = await fetch(credentialsUrl, { headers: { Authorization: token } });
  assert.equal(refused.status, 403);
  await waitForStatus(alice, url, 'revoked');
  assert.match(await alice.textContent('#timeline'), /access ended/);
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
