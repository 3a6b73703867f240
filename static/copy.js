// Copy buttons for the credentials page: one after each element marked `data-copy`, copying its
// text. Without JavaScript the text is there to select by hand. Served from /static, within the
// pages' Content-Security-Policy (script-src 'self').
for (const source of document.querySelectorAll('[data-copy]')) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'copy';
  button.textContent = 'Copy';
  button.setAttribute('aria-label', `Copy the ${source.dataset.copy}`);
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed: select the text';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 2000);
  });
  source.insertAdjacentElement('afterend', button);
}
