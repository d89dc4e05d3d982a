/*
 * Copyright 2026 Example Corp.
 * Licensed under the Apache License, Version 2.0.
 */
// A release pipeline with most of the declarative subset.
pipeline {
    agent any

    environment {
        APP_NAME = 'shop'
        REGISTRY = "registry.example.com/${APP_NAME}"
        DEPLOY_TOKEN = credentials('DEPLOY_TOKEN')
    }

    options {
        timeout(time: 30, unit: 'MINUTES')
        retry(2)
        disableConcurrentBuilds()
        timestamps()
        buildDiscarder(logRotator(numToKeepStr: '20'))
        ansiColor('xterm')
    }

    parameters {
        string(name: 'VERSION', defaultValue: '1.0.0', description: 'Version to release')
        booleanParam(name: 'DRY_RUN', defaultValue: false, description: 'Skip the deploy')
        choice(name: 'REGION', choices: ['eu-west-1', 'us-east-1',], description: 'Where')
        text(name: 'NOTES', defaultValue: '', description: 'Release notes')
    }

    triggers {
        cron('H 4 * * 1-5')
    }

    stages {
        stage('Build') {
            steps {
                sh 'make build'
                sh script: """
                    echo building ${params.VERSION}
                    ./gradlew assemble
                """, returnStatus: false
                archiveArtifacts artifacts: 'build/libs/*.jar', fingerprint: true
                stash name: 'jars', includes: 'build/libs/*.jar'
            }
        }
        stage('Test') {
            parallel {
                stage('Unit') {
                    steps {
                        sh './gradlew test'
                        junit 'build/test-results/**/*.xml'
                    }
                }
                stage('Lint') {
                    steps {
                        retry(3) {
                            sh "./gradlew lint -Pregion=$REGION"
                        }
                        catchError(buildResult: 'SUCCESS', stageResult: 'UNSTABLE') {
                            sh 'make audit'
                        }
                    }
                }
            }
        }
        stage('Matrix') {
            matrix {
                axes {
                    axis {
                        name 'JDK'
                        values '17', '21'
                    }
                    axis {
                        name 'OS'
                        values 'linux', 'mac'
                    }
                }
                excludes {
                    exclude {
                        axis {
                            name 'OS'
                            values 'mac'
                        }
                    }
                }
                stages {
                    stage('Compat') {
                        steps { echo "JDK ${JDK} on ${OS}" }
                    }
                }
            }
        }
        stage('Staging') {
            when {
                beforeAgent true
                allOf {
                    branch 'main'
                    not { changeRequest() }
                    environment name: 'DRY_RUN', value: 'false'
                }
            }
            stages {
                stage('Deploy staging') {
                    steps {
                        unstash 'jars'
                        withCredentials([string(credentialsId: 'DEPLOY_TOKEN', variable: 'TOKEN')]) {
                            deploy app: 'shop', environment: 'staging', strategy: 'blueGreen', instances: 2,
                                   artifact: 'target/*.jar', command: './app', healthPath: '/healthz',
                                   smoke: 'curl -fsS "$GREEN_URL/healthz"'
                        }
                    }
                }
            }
        }
        stage('Approve') {
            input {
                message 'Release to production?'
                ok 'Release'
                submitter 'qa@example.com'
                parameters {
                    string(name: 'TICKET', defaultValue: '', description: 'Change ticket')
                }
            }
            steps {
                dir('deploy') {
                    withEnv(['STAGE=prod']) {
                        timeout(time: 10, unit: 'MINUTES') {
                            deploy app: 'shop', environment: 'production', strategy: 'blueGreen', instances: 6,
                                   artifact: 'target/*.jar', command: './app', healthPath: '/healthz'
                        }
                    }
                }
            }
        }
    }

    post {
        always { junit 'build/test-results/**/*.xml' }
        success { echo 'released' }
        failure { echo 'failed' }
        unstable { echo 'unstable' }
        aborted { echo 'aborted' }
        changed { echo 'changed' }
        fixed { echo 'fixed' }
        regression { echo 'regression' }
        cleanup { deleteDir() }
    }
}
