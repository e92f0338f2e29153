"""The base layer every package may import: the unit of work (``model``) and the error tree (``errors``).

It imports nothing of complaintdesk, so ``ocr``, ``classifiers`` and ``storage`` can depend on it
without depending on the application layer above them (intake, mail, CLI).
"""
