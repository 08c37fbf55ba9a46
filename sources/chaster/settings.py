"""Constants of the Chaster Extensions API and of this source's defaults."""

DEFAULT_BASE_URL = "https://api.chaster.app"
SEARCH_PATH = "/api/extensions/sessions/search"
SESSION_PATH = "/api/extensions/sessions/{session_id}"

STATUSES = ("locked", "unlocked", "deserted", "all")
SORT_ORDERS = ("auto", "asc", "desc")
PRIVACY_MODES = ("full", "pseudonymous")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100  # the largest `limit` public code uses; the API does not document its cap

DEFAULT_REQUESTS_PER_MINUTE = 100  # the documented budget
RATE_WINDOW_SECONDS = 60.0

# Transient faults (5xx, resets, timeouts, bodies that are not JSON) are retried this often with
# exponential backoff; rate limits are waited out up to a total wait instead.
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_RATE_LIMIT_WAIT = 900.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0

# A long backfill is committed to DuckDB in chunks so a killed run loses at most one chunk.
DEFAULT_CHUNK_PAGES = 50
DEFAULT_CHUNK_SECONDS = 120.0
