// Copy buttons: a button with `data-copy="ID"` puts the text of the element with that id on
// the clipboard, and says so. Secrets shown once (tokens) are easier to carry this way.
"use strict";
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch (_) {
    // No clipboard (an old browser, or permission refused): select the text instead.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Press Ctrl-C";
  }
  button.dataset.copied = "true";
});
