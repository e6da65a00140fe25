"""Setup on era C and later (protocol §9.8): the legacy provider routes' 410, and the errors of
an organization's chat model config. No I/O.

Coder removed the per-type chat provider tables (PR #25416, May 2026) and left 410 tombstones
on the legacy ``/chats/providers`` and ``/chats/user-provider-configs`` collections (coderd
``writeLegacyChatProviderGone``; the tombstones went with the experimental mount in PR #29548):
a setup that meets 410 there uses the AI providers (``/api/v2/ai/providers``) instead, not a
failure. The texts are protocol §9.8's reading of coderd at 004053e8 (the handler's Go source
is not in our stored copy of coder/coder; the 410 text is also quoted, word for word, by a
third party reading coderd/exp_chats.go).
"""

from __future__ import annotations

from typing import Final

#: What a legacy provider route answers once the AI providers replaced it.
LEGACY_GONE_STATUS: Final = 410
LEGACY_GONE: Final = "Legacy chat provider APIs were removed. Use AI provider APIs instead."
#: The legacy collections that answer 410 (under the chats mount).
LEGACY_COLLECTIONS: Final = ("providers", "user-provider-configs")

#: ``POST /api/v2/organizations/{org}/chats/models`` -> 201 with body ``{ai_provider_id,
#: model, display_name?, enabled?, is_default?, context_limit, compression_threshold?,
#: model_config?}``; 400 with these messages otherwise.
AI_PROVIDER_ID_REQUIRED: Final = "AI provider ID is required."
MODEL_REQUIRED: Final = "Model is required."
CONTEXT_LIMIT_REQUIRED: Final = "Context limit is required."
CONTEXT_LIMIT_DETAIL: Final = "context_limit must be greater than zero."
