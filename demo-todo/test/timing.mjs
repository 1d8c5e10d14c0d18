// What the demo's benchmark (bench.mjs) and profile (profile.mjs) do in the
// page: note when the list shows its rows, and type items as a person would.

// Installed before the page's scripts: notes when the list first shows at
// least `want` rows, on the page's performance.now() clock.
export function watchRows(want) {
  const check = () => {
    const n = document.querySelectorAll('ul[aria-label="Items"] > li').length;
    if (n >= want && window.__rowsAt === undefined) window.__rowsAt = performance.now();
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
}

export async function visit(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => window.__rowsAt !== undefined, null, { timeout: 120000 });
  return page.evaluate(() => {
    const s = window.sqlsyncDoc?.startup ?? {};
    return { rowsMs: window.__rowsAt, startup: s };
  });
}

// Adds n items by typing into the form and submitting, each timed in the
// page from the submit to its text being in the DOM.
export function typeItems(n) {
  return new Promise((resolve, reject) => {
    const input = document.getElementById('new-item');
    const form = input.closest('form');
    const setValue = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    const times = [];
    let i = 0;
    const next = () => {
      if (i === n) return resolve(times);
      const title = `typed ${Date.now()}-${i++}`;
      setValue.call(input, title);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      // Let React take the input, as between a person's keystrokes.
      requestAnimationFrame(() => {
        const t0 = performance.now();
        const obs = new MutationObserver(() => {
          for (const el of document.querySelectorAll('ul[aria-label="Items"] .title')) {
            if (el.textContent === title) {
              obs.disconnect();
              times.push(performance.now() - t0);
              setTimeout(next, 20);
              return;
            }
          }
        });
        obs.observe(document.body, { childList: true, subtree: true, characterData: true });
        form.requestSubmit();
      });
    };
    setTimeout(() => reject(new Error('typing timed out')), 120000);
    next();
  });
}
