"""A stand-in for the part of Microsoft Graph that evolution-ews' registry backend reads when a Microsoft 365
collection signs in, so that the collection's calendar, address-book and task-list children really appear.

evolution-ews always talks to Graph's own name (compiled in; the model's preset names it too); the stack maps that
name to the identity provider, whose server hands requests under /v1.0/ to `answer()`. What it answers is Graph's v1.0
shape (`value` lists, `@odata.deltaLink`, `{"error": {"code", "message"}}`), for:
  GET /v1.0/users/{user}/mailFolders/inbox           the sign-in check (evolution-ews asks for the Inbox)
  GET /v1.0/users/{user}/contactFolders/contacts     the default contact folder
  GET /v1.0/users/{user}/contactFolders/delta        the other contact folders, then a delta link back here
  GET /v1.0/users/{user}/calendarGroups              calendar groups
  GET /v1.0/users/{user}/calendarGroups/{id}/calendars
  GET /v1.0/users/{user}/todo/lists                  task lists (evolution-ews 3.51+)
  GET /v1.0/users/{user}/people                      "Recent Contacts" (3.51+): none
  GET /v1.0/users?$top=1                             the directory: the token's user
  GET /v1.0/contacts?$top=1                          organisational contacts (none; evolution-ews does not ask for
                                                     OrgContact.Read.All, so it gets 403)
Every request needs `Authorization: Bearer <access token>` the provider issued and has not expired or revoked
(401 InvalidAuthenticationToken otherwise), whose scope holds one of the delegated permissions Graph's reference
lists for that call (PERMISSIONS; bare or prefixed with Graph's URL; 403 ErrorAccessDenied otherwise); a user's
own mailbox only (403 ErrorAccessDenied): {user} is the token's user, or that login at any domain (the stack has
one person per login).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

PREFIX = "/v1.0/"
# The folders every mailbox has here; tests read them from this module to know what the client must show.
INBOX = {"id": "AQMkADAwATM0MDAAInbox", "displayName": "Inbox", "parentFolderId": "AQMkADAwATM0MDAARoot",
         "childFolderCount": 0, "unreadItemCount": 0, "totalItemCount": 0}
DEFAULT_CONTACTS = {"id": "AQMkADAwATM0MDAAContacts", "displayName": "Contacts",
                    "parentFolderId": "AQMkADAwATM0MDAARoot"}
CONTACT_FOLDERS = [{"id": "AQMkADAwATM0MDAALabContacts", "displayName": "Lab contacts",
                    "parentFolderId": DEFAULT_CONTACTS["id"]}]
CALENDAR_GROUPS = [{"id": "AQMkADAwATM0MDAAGroupMy", "name": "My Calendars",
                    "classId": "0006f0b7-0000-0000-c000-000000000046", "changeKey": "gr1"}]
CALENDARS = {CALENDAR_GROUPS[0]["id"]: [
    {"id": "AQMkADAwATM0MDAACalendar", "name": "Calendar", "color": "auto", "hexColor": "",
     "isDefaultCalendar": True, "changeKey": "ca1", "canShare": True, "canViewPrivateItems": True,
     "canEdit": True, "allowedOnlineMeetingProviders": ["teamsForBusiness"],
     "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": True, "isRemovable": False},
    {"id": "AQMkADAwATM0MDAALabRota", "name": "Lab rota", "color": "lightGreen", "hexColor": "#87d28e",
     "isDefaultCalendar": False, "changeKey": "ca2", "canShare": True, "canViewPrivateItems": True,
     "canEdit": True, "allowedOnlineMeetingProviders": [], "defaultOnlineMeetingProvider": "unknown",
     "isTallyingResponses": False, "isRemovable": True},
]}
TASK_LISTS = [{"id": "AQMkADAwATM0MDAATasks", "displayName": "Tasks", "isOwner": True, "isShared": False,
               "wellknownListName": "defaultList"}]

# The delegated permissions each call needs, any one of them (learn.microsoft.com/graph/api/<call>, "Permissions"),
# by the first segment after the user (or the path itself for directory calls).
PERMISSIONS = {
    "mailFolders": ("Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"),
    "contactFolders": ("Contacts.Read", "Contacts.ReadWrite"),
    "calendarGroups": ("Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite", "Calendars.Read.Shared"),
    "todo": ("Tasks.Read", "Tasks.ReadWrite"),
    "people": ("People.Read",),
    "/v1.0/users": ("User.ReadBasic.All", "User.Read.All"),
    "/v1.0/contacts": ("OrgContact.Read.All",),
}
# Microsoft Graph's own application ID, which its 401 answers name.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
_USER_PATH = re.compile(r"/v1\.0/(?:users/(?P<user>[^/?]+)|me)(?P<rest>/[^?]*)?")


def _error(status: int, code: str, message: str, headers: dict | None = None) -> tuple:
    return status, {"error": {"code": code, "message": message}}, headers or {}


# Exchange's answer for a mailbox the token may not read.
_ACCESS_DENIED = _error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def _listing(base: str, items: list, context: str) -> tuple:
    return 200, {"@odata.context": "%s/v1.0/$metadata#%s" % (base, context), "value": items}, {}


def _mailbox(base: str, user: str, rest: str, query: dict) -> tuple:
    own = "%s/v1.0/users/%s" % (base, quote(user))
    if rest == "/mailFolders/inbox":
        return 200, dict(INBOX, **{"@odata.context": "%s/v1.0/$metadata#users('%s')/mailFolders/$entity"
                                   % (base, user)}), {}
    if rest == "/contactFolders/contacts":
        return 200, dict(DEFAULT_CONTACTS), {}
    if rest == "/contactFolders/delta":
        # The first round lists every folder; a round with the delta token it handed out lists the changes: none.
        changes = [] if "$deltatoken" in query else [dict(folder) for folder in CONTACT_FOLDERS]
        return 200, {"@odata.context": "%s/v1.0/$metadata#Collection(contactFolder)" % base, "value": changes,
                     "@odata.deltaLink": own + "/contactFolders/delta?$deltatoken=mailstack-1"}, {}
    if rest == "/calendarGroups":
        return _listing(base, [dict(group) for group in CALENDAR_GROUPS], "users('%s')/calendarGroups" % user)
    match = re.fullmatch(r"/calendarGroups/([^/]+)/calendars", rest)
    if match:
        if match.group(1) not in CALENDARS:
            return _error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return _listing(base, [dict(calendar) for calendar in CALENDARS[match.group(1)]], "calendars")
    if rest == "/todo/lists":
        return _listing(base, [dict(task_list) for task_list in TASK_LISTS], "users('%s')/todo/lists" % user)
    if rest == "/people":
        return _listing(base, [], "users('%s')/people" % user)
    return _error(400, "BadRequest", "Resource not found for the segment '%s'." % rest.rsplit("/", 1)[-1])


def answer(store, where: dict, method: str, path: str, query: dict, authorization: str | None) -> tuple:
    """(status, JSON body, headers) for one Graph request, logged with its status; the caller holds the store's
    lock. ``where``: Graph's base URL and the authorization URI a 401 names (the stack's
    settings.graph_settings())."""
    token = (authorization or "")[len("Bearer "):] if (authorization or "").startswith("Bearer ") else ""
    info = store.active(token) if token else None
    result = _answer(info, token, where, method, path, query)
    store.note(event="graph", method=method, path=path, authorized=info is not None, status=result[0])
    return result


def _answer(info, token, where, method, path, query):
    if info is None:
        return _error(401, "InvalidAuthenticationToken", "Access token is empty." if not token else
                      "Access token validation failure. Invalid audience.",
                      {"WWW-Authenticate": 'Bearer realm="", authorization_uri="%s", client_id="%s"'
                                           % (where["authorization_uri"], GRAPH_APP_ID)})
    if method != "GET":
        return _error(405, "Request_BadRequest", "Only reads are served here.")
    match = _USER_PATH.fullmatch(path)
    segment = (match.group("rest") or "/").split("/")[1] if match else path
    needed = PERMISSIONS.get(segment)
    granted = {scope[len(where["base"]) + 1:] if scope.startswith(where["base"] + "/") else scope
               for scope in info["scope"].split()}
    if needed and not granted & set(needed):
        if match:  # a mailbox's data: Exchange's own answer
            return _ACCESS_DENIED
        return _error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    if path == "/v1.0/users":
        return _listing(where["base"], [{"id": info["user"]}], "users(id)")
    if path == "/v1.0/contacts":
        return _listing(where["base"], [], "contacts")
    if not match:
        return _error(400, "BadRequest", "Invalid version or resource: %s" % path)
    user = unquote(match.group("user") or info["user"])
    if user != info["user"] and user.partition("@")[0] != info["user"]:
        return _ACCESS_DENIED
    return _mailbox(where["base"], user, match.group("rest") or "", query)
