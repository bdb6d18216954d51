// Package analysis is promgate's analysis engine and its controllers: it prepares a run
// (args, PromQL, conditions compiled once), takes measurements on a shared tick grid,
// judges them by DESIGN.md section 2 (no data is never success), decides metric and run
// verdicts, and persists everything in AnalysisRun status so a restart resumes exactly.
package analysis
