"""Services behind the admin API and the console: the stored catalog, credential encryption, dashboard stats."""
