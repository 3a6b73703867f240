// The request page, live: while the request can still change, the page is read again every
// 3 s and put in place when it changed, without a reload (without JavaScript it refreshes
// itself while lakegate works on it). Times are shown in the viewer's time zone, with the UTC
// time on hover, and an active grant counts down to its expiry. Served from /static, within
// the pages' Content-Security-Policy.
const FINAL = new Set(['expired', 'revoked', 'denied', 'cancelled', 'failed', 'lapsed']);
const EVERY_MS = 3000;

function localTimes(root) {
  for (const t of root.querySelectorAll('time[datetime]')) {
    const at = new Date(t.getAttribute('datetime'));
    if (Number.isNaN(at.getTime())) continue;
    t.title = t.textContent.trim();
    t.textContent = at.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  }
}

function countdown() {
  const out = document.getElementById('countdown');
  const end = document.querySelector('#expires-at time[datetime]');
  if (!out || !end) return;
  const left = Math.floor((new Date(end.getAttribute('datetime')) - Date.now()) / 1000);
  if (left <= 0) {
    out.textContent = '(ending now)';
    return;
  }
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = String(left % 60).padStart(2, '0');
  out.textContent = `(${h ? `${h}h ` : ''}${m}m ${s}s left)`;
}

// Someone typing a comment or a reason keeps what they typed: no swap until they are done.
function typing() {
  const active = document.activeElement;
  if (active && ['INPUT', 'TEXTAREA', 'SELECT'].includes(active.tagName)) return true;
  return [...document.querySelectorAll('main textarea, main input[type=text]')]
    .some((f) => f.value !== f.defaultValue);
}

let served = document.querySelector('main')?.innerHTML ?? '';

async function poll() {
  const status = document.getElementById('status')?.textContent.trim();
  if (!status || FINAL.has(status)) return; // nothing changes any more
  try {
    const res = await fetch(location.href, { cache: 'no-store', credentials: 'same-origin' });
    if (res.ok && !typing()) {
      const next = new DOMParser().parseFromString(await res.text(), 'text/html').querySelector('main');
      if (next && next.innerHTML !== served) {
        served = next.innerHTML;
        document.querySelector('main').replaceWith(next);
        localTimes(next);
        countdown();
      }
    }
  } catch {
    // Offline for a moment: the next look tries again.
  }
  setTimeout(poll, EVERY_MS);
}

localTimes(document);
countdown();
setInterval(countdown, 1000);
setTimeout(poll, EVERY_MS);
