import { forwardRef, useEffect, useImperativeHandle, useRef } from 'react';
import { monaco, SQL_LANGUAGE } from './monaco';

export interface SqlEditorHandle {
  /** What Ctrl/Cmd-Enter runs: the selection if there is one, else the whole text. */
  runText(): { sql: string; offset: number; selection: boolean };
  setText(text: string): void;
  /** Marks an error at a 0-based offset in the editor's text (a word there, or `length` characters). */
  markError(offset: number, length: number | null, message: string): void;
  clearMarkers(): void;
  focus(): void;
}

const MARKER_OWNER = 'sallyport-gateway';

export const SqlEditor = forwardRef<
  SqlEditorHandle,
  { initial: string; onChange(text: string): void; onRun(): void; label: string }
>(function SqlEditor({ initial, onChange, onRun, label }, ref) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const callbacks = useRef({ onChange, onRun });
  callbacks.current = { onChange, onRun };
  const initialText = useRef(initial);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const e = monaco.editor.create(el, {
      value: initialText.current,
      language: SQL_LANGUAGE,
      theme: 'vs',
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 13,
      lineHeight: 20,
      fontFamily: '"JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      scrollBeyondLastLine: false,
      wordWrap: 'on',
      renderLineHighlight: 'line',
      tabSize: 2,
      fixedOverflowWidgets: true,
      padding: { top: 8, bottom: 8 },
      ariaLabel: label,
      lineNumbersMinChars: 3,
      overviewRulerLanes: 0,
      scrollbar: { alwaysConsumeMouseWheel: false },
    });
    editor.current = e;
    e.addAction({
      id: 'sallyport.run',
      label: 'Run the selection or the whole text',
      keybindings: [monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter],
      contextMenuGroupId: 'navigation',
      contextMenuOrder: 0,
      run: () => callbacks.current.onRun(),
    });
    const sub = e.onDidChangeModelContent(() => {
      const model = e.getModel();
      if (!model) return;
      // Editing clears the gateway's markers: they point at text that may have moved.
      monaco.editor.setModelMarkers(model, MARKER_OWNER, []);
      callbacks.current.onChange(model.getValue());
    });
    return () => {
      sub.dispose();
      e.getModel()?.dispose();
      e.dispose();
      editor.current = null;
    };
  }, [label]);

  useImperativeHandle(
    ref,
    () => ({
      runText() {
        const e = editor.current;
        const model = e?.getModel();
        if (!e || !model) return { sql: '', offset: 0, selection: false };
        const sel = e.getSelection();
        if (sel && !sel.isEmpty()) {
          return {
            sql: model.getValueInRange(sel),
            offset: model.getOffsetAt(sel.getStartPosition()),
            selection: true,
          };
        }
        return { sql: model.getValue(), offset: 0, selection: false };
      },
      setText(text) {
        const e = editor.current;
        const model = e?.getModel();
        if (!e || !model) return;
        // An undoable edit, so a history pick can be taken back with Ctrl/Cmd-Z.
        e.pushUndoStop();
        e.executeEdits('history', [{ range: model.getFullModelRange(), text }]);
        e.pushUndoStop();
        e.setSelection(new monaco.Selection(1, 1, 1, 1));
        e.focus();
      },
      markError(offset, length, message) {
        const e = editor.current;
        const model = e?.getModel();
        if (!e || !model) return;
        const start = model.getPositionAt(Math.max(0, offset));
        let range: monaco.IRange;
        if (length !== null) {
          const end = model.getPositionAt(offset + Math.max(1, length));
          range = new monaco.Range(start.lineNumber, start.column, end.lineNumber, end.column);
        } else {
          const word = model.getWordAtPosition(start);
          range = word
            ? new monaco.Range(start.lineNumber, word.startColumn, start.lineNumber, word.endColumn)
            : new monaco.Range(start.lineNumber, start.column, start.lineNumber, start.column + 1);
        }
        monaco.editor.setModelMarkers(model, MARKER_OWNER, [
          { ...range, severity: monaco.MarkerSeverity.Error, message, source: 'PostgreSQL' },
        ]);
        e.revealRangeInCenterIfOutsideViewport(range);
      },
      clearMarkers() {
        const model = editor.current?.getModel();
        if (model) monaco.editor.setModelMarkers(model, MARKER_OWNER, []);
      },
      focus() {
        editor.current?.focus();
      },
    }),
    [],
  );

  return <div className="sql-editor" ref={host} data-testid="sql-editor" />;
});
