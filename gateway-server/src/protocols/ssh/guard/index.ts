export {
  type AnalyzeOptions,
  type ArgKind,
  analyzeCommandLine,
  type ContextFrame,
  type ContextKind,
  DYNAMIC_COMMAND,
  historyExpansionAt,
  initShellParser,
  MAX_LINE_BYTES,
  MAX_NESTED_DEPTH,
  NO_COMMAND,
  type RedirectInfo,
  type ShellAnalysis,
  type SimpleCommand,
} from './analyze';
export { createLineEditor, LineEditor, type LineEditorOptions, type SubmittedLine } from './line-editor';
export {
  DEFAULT_SHELL_RULES,
  evaluateCommandLine,
  MAX_ARGS_PATTERN,
  ruleMatches,
  SHELL_SYNTAX_ERROR_RULE,
  type ShellRule,
  ShellRuleSchema,
  type ShellVerdict,
  strictestRule,
  unsafePatternReason,
} from './rules';
export { createScreenLineReader, type ScreenLineReader, type ScreenLineReaderOptions } from './screen-line';
