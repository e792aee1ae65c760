"""Trust verification: proxy secret dumps, reference roots, verdicts, sources, the check runner."""
