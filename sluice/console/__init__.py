"""The built-in web console at /console: server-rendered page shells, vanilla JS calling the admin API."""
