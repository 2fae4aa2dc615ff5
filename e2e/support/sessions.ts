// Driving the console's session tabs: the xterm terminal and the Monaco SQL editor.
import type { Locator, Page } from 'playwright-core';

/** Types into the terminal of a tab panel; `\r` presses Enter. */
export async function typeInTerminal(page: Page, panel: Locator, text: string): Promise<void> {
  await panel.locator('.xterm').click();
  const parts = text.split('\r');
  for (const [i, part] of parts.entries()) {
    if (part) await page.keyboard.type(part);
    if (i < parts.length - 1) await page.keyboard.press('Enter');
  }
}

/** What the terminal shows (xterm's DOM renderer), as text. */
export const terminalText = (panel: Locator): Promise<string> => panel.locator('.xterm-rows').innerText();

/** Replaces the editor's text as a user would: select all, then type (Enter between lines). */
export async function setEditorText(page: Page, panel: Locator, text: string): Promise<void> {
  await panel.locator('.monaco-editor .view-lines').click();
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Delete');
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line) await page.keyboard.insertText(line);
    if (i < lines.length - 1) await page.keyboard.press('Enter');
  }
}

/** The editor's text as rendered (Monaco draws spaces as no-break spaces). */
export async function editorText(panel: Locator): Promise<string> {
  const lines = await panel.locator('.monaco-editor .view-line').evaluateAll((els) =>
    els
      .map((el) => ({
        top: Number.parseFloat((el as unknown as { style: { top: string } }).style.top || '0'),
        text: el.textContent ?? '',
      }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text.replaceAll('\u00a0', ' ')),
  );
  return lines.join('\n');
}

/** Sets the editor's text, runs it with Ctrl+Enter and waits until the run has ended. */
export async function runSql(page: Page, panel: Locator, sql: string, timeoutMs = 30_000): Promise<string> {
  const output = panel.locator('.sql-output');
  const before = await output.getAttribute('data-run-id');
  await setEditorText(page, panel, sql);
  await page.keyboard.press('Control+Enter');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [id, status] = await Promise.all([
      output.getAttribute('data-run-id'),
      output.getAttribute('data-run-status'),
    ]);
    if (id && id !== before && status && status !== 'running') return status;
    if (Date.now() > deadline)
      throw new Error(`the run of ${JSON.stringify(sql)} did not end (status ${status})`);
    await page.waitForTimeout(50);
  }
}

/**
 * Waits until the SQL tab's current run has ended (neither executing nor held for review) and
 * returns its status: after an approver's decision, `complete`, `blocked`, …
 */
export async function runEnded(panel: Locator, timeoutMs = 30_000): Promise<string> {
  const output = panel.locator('.sql-output');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await output.getAttribute('data-run-status');
    if (status && status !== 'running' && status !== 'review') return status;
    if (Date.now() > deadline) throw new Error(`the run did not end (status ${status})`);
    await panel.page().waitForTimeout(50);
  }
}
