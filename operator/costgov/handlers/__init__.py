"""kopf glue: indexes, timers and admission handlers; starting the operator."""
