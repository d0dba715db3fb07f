"""What requests cost and what they may spend: usage counts (`usage`), prices (`prices`), budgets and rate limits
(`limits`, `ledger`)."""
