"""The phrase catalogue of the prompt-injection signal, in English, Hinglish and Hindi.

Kept apart from the scoring (injection.py) because this is the part that grows: each entry
is a shape injected text takes, matched on lower-cased text (Devanagari after NFD with the
nukta removed, so spellings with and without it match alike). Every family has a gate, a
set of words at least one of which must be in the message before its regexes run; a benign
message usually opens no gate, which is what keeps the signal inside its latency budget.
"""

from __future__ import annotations

import re

# --- English, matched on lower-cased text -------------------------------------------------

# The general "verb + modifiers + instructions" shape comes last: alternatives are tried in
# order, and the qualifier check in _override() must see the specific shapes first.
OVERRIDE_EN = re.compile(
    r"\b(?:ignore|disregard|forget) the (?:rules|instructions|guidelines|policies) "
    r"(?:you were|you've been|you have been|that were) (?:given|trained|told|programmed)"
    r"|\b(?:ignore|disregard|forget) (?:everything|anything|all(?: of)?(?: that| what)?) "
    r"(?:above|before|prior|previously|you were told|you've been told|i said before)"
    r"|\b(?:ignore|disregard|forget|pay no attention to|don't listen to|do not listen to) "
    r"(?:what|whatever|anything|everything)(?: else)? (?:you were|you've been|you have been|"
    r"they) (?:told|given|instructed|taught|programmed)"
    r"|\b(?:previous|prior|earlier|original|old|system) (?:instructions|guidance|rules|"
    r"guidelines|prompt) (?:no longer appl|(?:is|are) (?:now )?(?:void|cancelled|invalid))"
    r"|\b(?:everything|all) (?:above|before this(?: line| message)?) (?:is|as) "
    r"(?:void|invalid|cancelled)"
    r"|\byour (?:new|real|actual|true|updated) instructions?(?: are)? ?:"
    r"|\b(?:the )?(?:real|actual|true) instructions?(?: are)? ?:"
    r"|\b(?:respond|reply|answer|end) (?:to )?(?:every|all|each|any) (?:future |later |subsequent )?"
    r"(?:questions?|messages?|queries|requests?|replies|answers?) (?:with|by)\b"
    r"|(?P<generic>\b(?:ignore|disregard|forget|override|bypass|discard|abandon|neglect|set aside|"
    r"do not follow|don't follow|dont follow|stop following|no longer follow)"
    r"(?: (?:all|any|every|each|the|your|my|our|these|those|of|previous|previously|prior|"
    r"above|earlier|preceding|foregoing|original|initial|old|existing|current|system|"
    r"developer|safety|default|given|other|former|programmed|built-in|usual|normal|standard|"
    r"regular|internal)){0,4}"
    r" (?:instructions?|prompts?|rules|directives?|guidelines|guidance|guardrails|polic(?:y|ies)|"
    r"constraints|restrictions|programming|training|system message)\b)"
)
# Weaker override shapes: customers also say "from now on you should email me" and "new
# instructions: deliver to my office", so these need a second indicator to pass 0.5.
OVERRIDE_SOFT_EN = re.compile(
    r"\b(?:new|updated|revised)(?: system)? instructions?(?: are)? ?:"
    r"|\brepeat after me\b"
    r"|\b(?:otp|verification|kyc|security|identity|fraud) (?:check|checks|step|screening)? ?"
    r"(?:is|are|has been|have been) (?:now )?(?:disabled|turned off|off|not required|waived|skipped)"
    r"|\bnew (?:rules|instructions) (?:apply|are in effect|from (?:here|now))"
    r"|\byour (?:real|actual|true|new) (?:task|job|goal|mission|purpose)\b"
    r"|\b(?:skip|bypass|ignore|disable|turn off|don't ask for|do not ask for) (?:the |all |any )?"
    r"(?:verification|otp|kyc|authentication|identity check|security checks?|checks|2fa|mfa)\b"
    r"|\bfrom now on,? you (?:will|must|shall|are going to|are to)\b"
)
OVERRIDE_QUALIFIED = re.compile(
    r"\b(?:previous|prior|above|earlier|preceding|foregoing|original|initial|system|your|all|"
    r"developer|safety|every|any|former|programmed|built-in|default|existing|old|usual|"
    r"normal|standard|regular|internal)\b"
)
# Jailbreak personas: nobody asks a support agent to become "DAN" for a benign reason.
PERSONA_EN = re.compile(
    r"\byou(?: are|'re|r) now (?:an? |the |in |my )?(?:dan\b|unrestricted|jailbroken|"
    r"developer mode|evil|uncensored|unfiltered|free from|no longer|not bound|god mode)"
    r"|\byou(?: are|'re|r) no longer (?:an? |the |my )?(?:[a-z]+ )?(?:ai|assistant|bot|bound|"
    r"restricted|agent)\b"
    r"|\b(?:tum|aap|tu) ab (?:ek )?(?:unrestricted|jailbroken|uncensored|dan\b|free ai)"
    r"|\b(?:enable|activate|enter|switch to) (?:developer|debug|admin|god|dan|jailbreak) mode"
    r"|\b(?:dan|developer|god|jailbreak) mode (?:enabled|activated|on)\b"
    r"|\bdo anything now\b"
    r"|\b(?:you (?:have|now have|will have)|with|without any) (?:no|zero) (?:restrictions|rules|"
    r"limits|limitations|filters|guidelines|policies)"
)
ROLE_EN = re.compile(
    r"\byou(?: are|'re) now (?:an? |the |my )?(?:admin|administrator|root|superuser)\b"
    r"|\bas (?:your|the) (?:admin|administrator|developer|owner|creator)\b"
    r"|\b(?:act|behave|pretend|roleplay|role-play)(?: to be| as| like)"
    r" (?:an? |the |my |your )?(?:admin|administrator|system|developer|root|superuser|"
    r"supervisor|dan\b|unrestricted|jailbroken|different ai|ai without)"
    r"|\b(?:i am|i'm|this is) (?:the |your |an? )?(?:admin|administrator|developer|"
    r"system administrator|sysadmin|root user|superuser|system owner|bot owner|openai|anthropic)\b"
    r"|\bas (?:the|your|an?) (?:admin|administrator|developer|system|superuser|root),? "
    r"(?:i|you|we)\b"
)
# An order addressed to the assistant: after a fake "System:" header it makes the header count.
COMMAND_EN = re.compile(
    r"\byou (?:must|will|shall|are now|should now|are required to)\b|\bproceed (?:to|with)\b"
    r"|\bcomply\b"
    r"|\b(?:approve|allow|unlock|disable) (?:all|every|this|any)\b"
)
# Chat-template markup: the tokens models are trained on, typed into a customer message.
TEMPLATE_EN = re.compile(
    r"<\|[a-z_]{2,20}\|>|\[/?inst\]|<<sys>>|</?system>|\[/?system\]"
    r"|\"role\" ?: ?\"(?:system|developer|assistant|tool)\""
)
SYSTEM_EN = re.compile(
    r"(?:^|\n)[ \t>#*]*(?:system|sys|developer|assistant) ?(?:prompt|message)? ?:"
    r"|\[/?(?:system|inst|sys)\]|<<sys>>|<\|[a-z_]{2,20}\|>|</?system>"
    r"|#{2,} ?(?:system|instructions?|new instructions?)\b"
    r"|\b(?:begin|start|end) (?:of )?system (?:prompt|message)"
    r"|\b(?:system|admin|developer) override\b"
    r"|(?:^|\n|[.!] )override ?:"
    r"|\bend of (?:the )?(?:customer|user|human|client) (?:message|input|text|email)\b"
    r"|\bmessage from (?:the )?(?:system|developer|administrator|admin)\b"
)
SECRET_EN = re.compile(
    r"\b(?:reveal|show|print|display|tell|give|share|leak|output|repeat|dump|send|expose|"
    r"disclose|provide|list|what(?:'s| is| are| were)|recite|copy|reply with|export|read|write)"
    r"(?: me| us)?(?: [a-z0-9']{1,12}){0,6}? "
    r"(?:system prompt|initial prompt|hidden prompt|original prompt|your prompt|"
    r"your (?:initial |original |hidden |secret )?instructions|system instructions|"
    r"system message|developer message|hidden instructions|api ?keys?|secret keys?|"
    r"access tokens?|auth tokens?|bearer tokens?|private keys?|credentials|"
    r"admin passwords?|passwords? (?:of|for) (?:all|other|the admin|every)|database password|"
    r"your (?:hidden|secret|internal|original|system|initial) (?:rules|guidelines|policies|prompt)|"
    r"(?:the )?(?:customer|user|account holder)'?s'? (?:full |complete |entire |unmasked )?"
    r"(?:card number|card details|aadhaar(?: number)?|pan|ssn|account number|cvv|password|otp)|"
    r"env(?:ironment)? variables|the words above|everything above|text above|"
    r"(?:the contents of )?your (?:configuration|config|system settings|setup)|"
    r"stored (?:card|customer|account|payment) (?:numbers|data|details|records))"
    r"|\b(?:what|which) (?:instructions|rules|prompts?|guidelines) (?:were you|have you been|"
    r"did you get|you were) (?:given|told|programmed)?"
    r"|\b(?:what|everything|anything|all)(?: else)? (?:were you|you were|have you been|"
    r"you've been) (?:told|given|instructed|programmed)"
    r"|\b(?:top|start|beginning) of (?:this|the|our) (?:chat|conversation|context)"
    r"|\b(?:list|show|give|dump|export|send|print|tell|reveal)(?: me)? (?:all|every|each)(?: of the| the)? "
    r"(?:customers?|users?|clients?|account ?holders?|accounts)'?s? (?:data|details|phone|numbers|"
    r"emails?|addresses|records|passwords|balances|card)"
)
TOOL_EN = re.compile(
    r"</?(?:tool_call|tool_use|function_call|functioncall|invoke|tool)\b|<function="
    r"|\"(?:function_call|tool_calls|tool_use)\" ?:"
    r"|\{ ?\"(?:name|tool|function|action|tool_name)\" ?: ?\"[a-z0-9_.\-]{1,64}\" ?, ?"
    r"\"(?:arguments|parameters|args|input|params)\" ?:"
    r"|\b(?:call|invoke|execute|run|trigger) (?:the |this |that |a )?(?:function|tool|plugin)\b"
    r"|\bfunctions\.[a-z_]{2,40}\("
)

# Asking for more power than a customer has: "grant me admin access", "sudo ...".
PRIVILEGE = re.compile(
    r"\b(?:give|grant|assign|escalate|elevate|enable)(?: me| my account| my user)? "
    r"(?:full |admin |administrator |root |elevated |superuser |unrestricted |all )+"
    r"(?:access|permissions?|privileges?|rights|role)\b"
    r"|(?:^|\n)\s*sudo\b"
    r"|\b(?:full|admin|poora|pura) access (?:do|de do|dedo|chahiye|dijiye)\b"
)
# Text written to the agent that reads it, not to a person: how instructions ride inside
# an email or a document ("Note to the AI processing this complaint: ...").
AGENT_READER = re.compile(
    r"\b(?:dear|note to|attention|hey|hi|to|message for|instructions? for) (?:the |any |all )?"
    r"(?:ai|a\.i\.|assistant|chatbot|bot|llm|language model|model|agent|gpt)(?: assistant| agent)?"
    r"(?: (?:who is |that is )?(?:processing|reading|handling|summari[sz]ing|reviewing|parsing|"
    r"answering|triaging)|,? if you (?:are|'re) reading)"
    r"|\bif you are an? (?:ai|llm|language model|assistant|bot)\b"
)
GATE_AGENT = frozenset(b"ai assistant chatbot bot llm model agent gpt".split())
GATE_PRIVILEGE = frozenset(b"access permission permissions privileges privilege rights role sudo".split())


def addressed(low: str) -> float:
    return 0.6 if AGENT_READER.search(low) else 0.0


# --- Hindi and Hinglish --------------------------------------------------------------------
# Hinglish is matched on the lower-cased text; Devanagari after NFD with nuktas removed, so
# "नज़रअंदाज़" typed with or without nukta, precomposed or not, matches one spelling.

OVERRIDE_HINGLISH = re.compile(
    r"\b(?:pichle|pichhle|pichli|pehle|pahle|purane|upar|uper|saare|sare|sabhi|sab)"
    r"(?: (?:wale|wali|ke|ki|saare|sare|sab|diye|gaye|hue)){0,3}"
    r" (?:instructions?|nirdesh|nirdeshon|rules?|niyam|niyamon|prompts?|aadesh|adesh|"
    r"hidayat|hidayatein|guidelines)"
    r"(?: (?:ko|sab))? (?:ignore|bhool|bhul|bhula|nazarandaz|nazar andaz|chhod|chod|"
    r"mat mano|mat maano|na mano)"
    r"|\b(?:instructions?|rules|niyam|nirdesh|prompt) (?:ko )?(?:ignore|bhool|bhul|nazarandaz)"
    r" (?:karo|kar do|kardo|karke|kar ke|jao|ja|do)\b"
    r"|\b(?:pichla|pichhla|pichle|pehle ka|upar ka|purana) (?:sab|sara|saara|kuch)(?: kuch)? "
    r"(?:bhool|bhul|ignore|chhod|chod)"
    r"|\bnaye (?:instructions|niyam|rules) ?:"
    r"|\b(?:pehle|pahle) (?:jo )?(?:bataya|kaha|sikhaya|samjhaya) gaya[^\n]{0,30}?"
    r"(?:chhod|chod|bhool|bhul|ignore)"
)
OVERRIDE_DEVA = re.compile(
    r"(?:पिछल|पहल|ऊपर|सभी|सार|पुरान)[^\n]{0,24}?(?:निर्देश|नियम|आदेश|इंस्ट्रक्शन|हिदायत)"
    r"[^\n]{0,12}?(?:अनदेखा|नजरअंदाज|भूल|छोड|न मान|मत मान|इग्नोर)"
    r"|(?:निर्देश|नियम|इंस्ट्रक्शन)[^\n]{0,8}?(?:को )?(?:अनदेखा|नजरअंदाज|भूल|इग्नोर) ?(?:कर|जा)"
    r"|(?:नए|नये|नई) (?:निर्देश|नियम|इंस्ट्रक्शन)\s?:"
    r"|पहले (?:जो )?(?:बताया|कहा|सिखाया|समझाया) गया[^\n]{0,30}?(?:छोड|भूल|अनदेखा|इग्नोर)"
)
SECRET_HINGLISH = re.compile(
    r"\b(?:system prompt|apna prompt|apne prompt|apne instructions|apni instructions|"
    r"api key|secret key|admin password|sabke password|sab ke password)"
    r" (?:batao|bata do|btao|dikhao|dikha do|bolo|share karo|bhejo|de do|likho|print karo)"
    r"|\b(?:sab|saare|sare|sabhi) (?:customers|accounts|users|grahakon)(?: ka| ki| ke) "
    r"(?:data|details|number|numbers|password)"
)
SECRET_DEVA = re.compile(
    r"(?:सिस्टम प्रॉम्प्ट|सिस्टम प्रोम्प्ट|अपने निर्देश|अपना प्रॉम्प्ट|एपीआई की|एडमिन पासवर्ड|"
    r"सीक्रेट की)[^\n]{0,24}?(?:बताओ|बताएं|बताइए|बताइये|दिखाओ|दिखाएं|दो|भेजो|लिखो|लिखें|बोलो)"
    r"|(?:सभी|सारे) (?:ग्राहकों|यूजर्स|खातों) (?:का|की|के) (?:डेटा|जानकारी|विवरण|नंबर)"
)
ROLE_HINGLISH = re.compile(
    r"\b(?:developer|admin|manager|bank|system) ne (?:kaha|bola|bataya) (?:hai )?(?:ki )?"
    r"(?:mujhe|tum|aap)"
    r"|\b(?:ab se|abse|aaj se) (?:tum|aap|tu)(?: ek)? (?:admin|developer|unrestricted|dan|"
    r"hacker|system)"
    r"|\b(?:main|mai|mein) (?:tumhara |aapka )?(?:admin|developer|administrator|system admin)"
    r" (?:hoon|hu|hun|hoo)\b"
)
ROLE_DEVA = re.compile(
    r"(?:डेवलपर|एडमिन|मैनेजर|सिस्टम) ने कहा (?:है )?(?:कि )?"
    r"|अब (?:से )?(?:तुम|आप)[^\n]{0,12}?(?:एडमिन|डेवलपर|सिस्टम)"
    r"|(?:मैं|मै) (?:तुम्हारा |आपका )?(?:एडमिन|डेवलपर|व्यवस्थापक) (?:हूँ|हूं|हू)"
)
TOOL_HINGLISH = re.compile(r"\b(?:function|tool|api)(?: call)? (?:karo|chalao|run karo|execute karo|call karo)\b")
TOOL_DEVA = re.compile(r"(?:फंक्शन|टूल)[^\n]{0,8}?(?:कॉल करो|चलाओ|रन करो)")
PRIVILEGE_DEVA = re.compile(r"(?:पूरा|एडमिन|फुल) (?:एक्सेस|अधिकार) (?:दो|दे दो|दीजिए)")

# Devanagari gates: stems (after NFD and nukta removal) one of which must occur in the text.
DEVA_OVERRIDE = ("निर्देश", "नियम", "आदेश", "इंस्ट्रक्शन", "हिदायत", "बताया", "कहा", "सिखाया", "समझाया")
DEVA_SECRET = ("प्रॉम्प्ट", "प्रोम्प्ट", "निर्देश", "एपीआई", "पासवर्ड", "सीक्रेट", "ग्राहकों", "यूजर्स", "खातों")
DEVA_ROLE = ("एडमिन", "डेवलपर", "सिस्टम", "व्यवस्थापक", "मैनेजर")
DEVA_TOOL = ("फंक्शन", "टूल")
DEVA_PRIVILEGE = ("एक्सेस", "अधिकार")


def deva_gate(hi: str | None, stems: tuple[str, ...]) -> bool:
    return hi is not None and any(stem in hi for stem in stems)


def words(spec: str) -> frozenset[bytes]:
    return frozenset(spec.encode().split())


GATE_OVERRIDE = words(
    "ignore ignoring ignored ignores disregard disregarding forget forgetting override "
    "overriding bypass bypassing discard abandon neglect aside follow following instruction "
    "instructions bhool bhul bhula nazarandaz nazar chhod chod mano maano attention listen "
    "longer void invalid cancelled bataya kaha sikhaya samjhaya guidance future subsequent every "
    "naye niyam policy"
)
GATE_SOFT = words(
    "instruction instructions rules task job mission purpose skip bypass disable turn ask ignore "
    "repeat disabled waived skipped required off"
)
GATE_SYSTEM = words("system sys inst developer assistant override message")
GATE_ROLE = words(
    "admin administrator developer root superuser sysadmin dan jailbroken jailbreak "
    "unrestricted uncensored unfiltered longer bound mode system openai anthropic "
    "supervisor evil anything without hacker god restrictions rules limits limitations "
    "filters guidelines policies bank manager zero"
)
GATE_SECRET = words(
    "prompt instruction instructions api key keys apikey token tokens credential credentials "
    "password passwords env environment above message told given instructed programmed top "
    "start beginning customers users clients accounts holders sab saare sare sabhi grahakon "
    "export dump stored saved configuration config settings setup reply rules prompts"
)
GATE_TOOL = words("function functions tool tools api plugin endpoint")
CALL_SHAPE = re.compile(r"\b[a-z]{2,20}[_.][a-z_]{2,40}\((?:[a-z_]{1,30} ?=|\{|\")")
# Hindi in Devanagari is only looked for when the text has Devanagari characters.
DEVANAGARI = re.compile("[\u0900-\u097f]")
