import Runtime

/// The OpenAPI 3.0 description of `sae-run serve`'s JSON endpoints, served at /openapi.json. It
/// follows `ServeRequest` (Runtime/ServeRequests.swift): the keys, types, defaults and bounds
/// there, with the bounds this server was started with: an intervention names one of the attached
/// SAEs' hooks and a feature below its d_sae. One bound no schema can state: the prompt's tokens
/// must fit the model's context, which a prompt of at most (context − 1)/4 characters always does
/// (BOS + at most one token per UTF-8 byte); Tests/Fuzz/api.sh starts the server with that
/// --max-prompt-chars so that schemathesis can check the description both ways.
func openAPIDocument(_ limits: ServeRequest.Limits, targets: [Steering.Target], contextTokens: Int) -> String {
    let interventions = targets.map { t in
        #"{"type": "object", "required": ["hook", "feature", "value"], "additionalProperties": false, "properties": {"#
            + #""hook": {"type": "string", "enum": ["\#(t.hook)"]}, "feature": {"type": "integer", "minimum": 0, "maximum": \#(t.dSAE - 1)}, "#
            + #""value": {"type": "number", "description": "saturates at ±3.4e38 (float32)"}, "#
            + #""mode": {"type": "string", "enum": ["add", "clamp", "scale"], "default": "add"}, "#
            + #""scope": {"type": "string", "enum": ["prompt", "gen", "all"], "default": "all"}}}"#
    }.joined(separator: ",\n          ")
    return #"""
{
  "openapi": "3.0.3",
  "info": {
    "title": "sae-run serve",
    "version": "1",
    "description": "Read and steer the features of SAEs attached to a nanochat model. Every malformed request is answered 400 with {\"error\": {\"message\": ...}} naming the key."
  },
  "paths": {
    "/api/features": {
      "post": {
        "summary": "Per token of the prompt, the top features of every attached SAE",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeaturesRequest"}}}},
        "responses": {
          "200": {"description": "Features per token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeaturesReply"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"}
        }
      }
    },
    "/api/generate": {
      "post": {
        "summary": "Generate after the prompt, with steering interventions and per-token features",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateRequest"}}}},
        "responses": {
          "200": {"description": "The generated tokens", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateReply"}}}},
          "400": {"$ref": "#/components/responses/BadRequest"}
        }
      }
    }
  },
  "components": {
    "responses": {
      "BadRequest": {
        "description": "The request was refused; the message names the key and what was expected",
        "content": {"application/json": {"schema": {
          "type": "object", "required": ["error"], "additionalProperties": false,
          "properties": {"error": {"type": "object", "required": ["message"], "additionalProperties": false,
                                   "properties": {"message": {"type": "string", "minLength": 1}}}}
        }}}
      }
    },
    "schemas": {
      "FeaturesRequest": {
        "type": "object", "required": ["prompt"], "additionalProperties": false,
        "properties": {
          "prompt": {"type": "string", "minLength": 1, "maxLength": \#(limits.maxPromptChars), "description": "its tokens (with BOS) must also fit the model's context of \#(contextTokens)"},
          "top": {"type": "integer", "minimum": 1, "maximum": \#(limits.maxTop), "default": 10}
        }
      },
      "GenerateRequest": {
        "type": "object", "required": ["prompt"], "additionalProperties": false,
        "properties": {
          "prompt": {"type": "string", "minLength": 1, "maxLength": \#(limits.maxPromptChars), "description": "its tokens (with BOS) must also fit the model's context of \#(contextTokens)"},
          "max_tokens": {"type": "integer", "minimum": 1, "maximum": \#(limits.maxNewTokens), "default": \#(limits.defaultNewTokens)},
          "temperature": {"type": "number", "minimum": 0, "maximum": 10, "default": 0},
          "seed": {"type": "integer", "minimum": 0, "maximum": 18446744073709551615, "default": 42},
          "steer": {"type": "array", "maxItems": \#(limits.maxInterventions), "items": {"$ref": "#/components/schemas/Intervention"}}
        }
      },
      "Intervention": {
        "description": "add: x += value·W_dec[feature]; clamp: the feature set to value (the SAE's error kept); scale: the feature multiplied by value. One schema per attached SAE: its hook and its features.",
        "oneOf": [
          \#(interventions)
        ]
      },
      "TokenRow": {
        "type": "object", "required": ["token", "id", "saes"],
        "properties": {
          "token": {"type": "string"},
          "id": {"type": "integer", "minimum": 0},
          "saes": {"type": "array", "items": {
            "type": "object", "required": ["sae", "error_norm", "features"],
            "properties": {
              "sae": {"type": "integer", "minimum": 0, "description": "index into the attached SAEs"},
              "error_norm": {"type": "number", "nullable": true, "description": "‖x − x̂‖ of the token's activation; null when a steer made it overflow"},
              "features": {"type": "array", "description": "[feature, activation] pairs, strongest first",
                           "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}}
            }
          }}
        }
      },
      "FeaturesReply": {
        "type": "object", "required": ["tokens", "saes"],
        "properties": {
          "tokens": {"type": "array", "items": {"$ref": "#/components/schemas/TokenRow"}},
          "saes": {"type": "array", "items": {
            "type": "object", "required": ["hook", "d_sae", "path"],
            "properties": {"hook": {"type": "string"}, "d_sae": {"type": "integer", "minimum": 1}, "path": {"type": "string"}}
          }}
        }
      },
      "GenerateReply": {
        "type": "object", "required": ["tokens", "text", "rows"],
        "properties": {
          "tokens": {"type": "array", "items": {"type": "integer", "minimum": 0}},
          "text": {"type": "string"},
          "rows": {"type": "array", "items": {"$ref": "#/components/schemas/TokenRow"}}
        }
      }
    }
  }
}
"""# }
