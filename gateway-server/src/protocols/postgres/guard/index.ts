export { analyzeBatch, type BatchAnalysis, initSqlParser, type StatementInfo } from './analyze';
export {
  DEFAULT_SQL_RULES,
  evaluateBatch,
  ruleMatches,
  type SqlRule,
  SqlRuleSchema,
  type SqlVerdict,
  SYNTAX_ERROR_RULE,
  strictestRule,
} from './rules';
