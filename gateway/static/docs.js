// Copy buttons on the docs page's examples. Plain ES2017, no dependencies.
'use strict';

(() => {
  const copyText = async (text) => {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    // Plain http on a LAN address has no clipboard API: select the text for Ctrl+C instead.
    throw new Error('clipboard unavailable');
  };

  const selectText = (element) => {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  };

  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-copy]');
    if (!button) return;
    const code = button.closest('figure').querySelector('pre code');
    try {
      await copyText(code.textContent);
      button.textContent = '已复制';
    } catch (error) {
      selectText(code);
      button.textContent = '已选中,请按 Ctrl+C';
    }
    setTimeout(() => { button.textContent = '复制'; }, 2000);
  });
})();
