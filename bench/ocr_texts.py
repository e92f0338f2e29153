"""Slip texts for the OCR benchmark and the bundled samples (our own writing, English and Chinese).

Each text is what a citizen might write on a slip at the service center: complaints, suggestions,
praise and questions about the approval windows, the police desk, the medical office, the bank and
post office, the metro station outside, the building, and the online approval platform.
"""

from __future__ import annotations

ENGLISH: tuple[str, ...] = (
    "I waited two hours at Window 7 on 12 March and the staff member, Badge No. 1043, was rude to me. "
    "Please call me on 138-1234-5678.",
    "The toilets on the second floor have had no soap or paper towels for a week. Please fix this soon.",
    "Thank you to the officer at the police desk who helped me renew my residence permit in ten minutes.",
    "How long does approval of a business licence take? The online platform says pending since 3 May.",
    "The elevator near the east entrance is broken again and older visitors have to climb the stairs.",
    "The air conditioning in the waiting hall is far too cold. Many people were shivering this morning.",
    "Suggestion: open one more window for ID card collection on Saturdays, the queue is always long.",
    "The online booking website logged me out three times while I was paying the fee. Very frustrating.",
    "The nurse in the medical office was kind and patient when my father felt dizzy. Many thanks.",
    "Why is the post office counter closed at lunch time? I came at 12:30 and nobody was there.",
    "The metro exit B stairs are slippery when it rains. Please add a mat or a handrail there.",
    "Please email me at chen.ming@example.com about my residence permit, reference 2026-000123.",
    "Staff at Window 3 explained every form clearly and I finished all my documents in one visit.",
    "The bank machine in the lobby swallowed my card on 20 April. Contact me on 020 7946 0321.",
    "Could you put more seats near the approval windows? Pregnant women had to stand for an hour.",
    "The drinking water fountain on the ground floor tastes of rust and nobody has cleaned it.",
)

CHINESE: tuple[str, ...] = (
    "我在7号窗口排队两个小时，工号1043的工作人员态度很差。请联系我：138-1234-5678。",
    "二楼洗手间一个星期没有洗手液和纸巾了，希望尽快解决。",
    "感谢派出所窗口的民警，十分钟就帮我办好了居住证续签，服务非常好。",
    "网上审批平台的营业执照申请从五月三日起一直显示审核中，请问还要多久？",
    "东门旁边的电梯又坏了，老年人只能走楼梯，很不方便。",
    "大厅空调温度太低了，很多人等候时冻得发抖，建议调高一点。",
    "建议周六增开一个身份证领取窗口，每次排队的人都很多。",
    "地铁站B出口的楼梯下雨天很滑，请加防滑垫或者扶手。",
)

#: a mixed line or two, as on slips written by foreign residents helped by a friend
MIXED: tuple[str, ...] = (
    "7号窗口 Window 7: 等了很久 waited a long time. 电话 138-1234-5678",
)
