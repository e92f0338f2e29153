"""The base layer every package may import: the unit of work (``model``) and the error tree (``errors``),
and the allocator settings a long-lived process uses (``memory``).

It imports nothing of complaintdesk, so ``ocr``, ``classifiers`` and ``storage`` can depend on it
without depending on the application layer above them (intake, mail, CLI).
"""
