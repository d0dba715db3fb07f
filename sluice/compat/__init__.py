"""ModelRiver compatibility (DESIGN.md §9): pure translations between Sluice's records and events and the shapes
code written for ModelRiver expects — `customer_data`, the wrapped and raw `POST /v1/ai` bodies, the AIResponse
pushes of the Phoenix Channels endpoint — plus the Phoenix v2 wire format. No I/O here; `sluice/api/phoenix.py` and
`sluice/api/requests.py` do it."""
