<?php
// A receiver for SMS Edge's delivery callbacks: checks each POST's signature, then hands the event on.
// PHP's own functions only. Run: SMS_EDGE_CALLBACK_SECRET=... php -S 127.0.0.1:8000 receiver.php
const TOLERANCE_SECONDS = 300;

// Whether a v1= value of the signature is the HMAC of "<timestamp>.<body>", sent within 5 minutes.
function verified(string $secret, string $timestamp, string $signature, string $body): bool
{
    if (!preg_match('/\A[0-9]+\z/', $timestamp) || abs(time() - (int) $timestamp) > TOLERANCE_SECONDS) {
        return false;
    }
    $expected = 'v1=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
    foreach (explode(',', $signature) as $value) { // one value per secret while it is being rotated
        if (hash_equals($expected, trim($value))) {
            return true;
        }
    }
    return false;
}

// Your code goes here. An event may come twice (at-least-once): key what you do on event_id.
function handle(array $event): void
{
    $line = json_encode($event, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES) . "\n";
    file_put_contents(getenv('EVENTS_FILE') ?: 'events.jsonl', $line, FILE_APPEND | LOCK_EX);
}

$body = file_get_contents('php://input'); // raw bytes, as signed
$timestamp = $_SERVER['HTTP_SMSEDGE_TIMESTAMP'] ?? '';
$signature = $_SERVER['HTTP_SMSEDGE_SIGNATURE'] ?? '';
if ($_SERVER['REQUEST_METHOD'] !== 'POST'
    || !verified(getenv('SMS_EDGE_CALLBACK_SECRET'), $timestamp, $signature, $body)) {
    http_response_code(401);
    exit('bad signature');
}
handle(json_decode($body, true, 512, JSON_THROW_ON_ERROR)); // an error here answers 500: tried again
echo 'ok';
